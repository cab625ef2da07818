"""``zero_shot``: task-prompted generation per label (ZeroGen, the S3 paper's baseline).

For every label the step plans ``ceil(count_per_label / per_call)`` calls; each call asks for
``per_call`` records of that label under a JSON schema built from the task's fields.
"""

from __future__ import annotations

from datarefinery.steps.synthesize.planned import LabelledConfig, PlannedGeneration


class ZeroShotConfig(LabelledConfig):
    pass


class ZeroShot(PlannedGeneration[ZeroShotConfig]):
    name = "zero_shot"
    Config = ZeroShotConfig
    technique = "zero_shot"
    template_name = "zero_shot"
