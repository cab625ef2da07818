"""The step names a spec may use, mapped to their classes.

An explicit table rather than discovery by import side effects: what a spec can name is readable in
one place, and heavy step modules are imported only when a spec uses them.
"""

from __future__ import annotations

import importlib
from typing import Any

from datarefinery.errors import ConfigError
from datarefinery.steps.base import Step

STEPS: dict[str, str] = {
    "adversarial": "datarefinery.steps.curate.adversarial:Adversarial",
    "code_anonymize": "datarefinery.steps.refine.code_anonymize:CodeAnonymize",
    "consistency": "datarefinery.steps.curate.consistency:Consistency",
    "decontaminate": "datarefinery.steps.curate.decontaminate:Decontaminate",
    "dedup": "datarefinery.steps.curate.dedup:Dedup",
    "detox_rewrite": "datarefinery.steps.refine.detox_rewrite:DetoxRewrite",
    "dirs": "datarefinery.steps.refine.dirs:Dirs",
    "filter": "datarefinery.steps.curate.filter:Filter",
    "judge": "datarefinery.steps.curate.judge:Judge",
    "pii_rewrite": "datarefinery.steps.refine.pii_rewrite:PIIRewrite",
    "refine": "datarefinery.steps.refine.instruction:Refine",
    "review": "datarefinery.steps.curate.review:Review",
    "select": "datarefinery.steps.curate.select:Select",
    "validate": "datarefinery.steps.curate.validate:Validate",
    "zero_shot": "datarefinery.steps.synthesize.zero_shot:ZeroShot",
    "few_shot": "datarefinery.steps.synthesize.few_shot:FewShot",
    "attributes": "datarefinery.steps.synthesize.attributes:Attributes",
    "rationale": "datarefinery.steps.synthesize.rationale:Rationale",
    "conditioned": "datarefinery.steps.synthesize.conditioned:Conditioned",
    "self_instruct": "datarefinery.steps.synthesize.self_instruct:SelfInstruct",
    "evol_instruct": "datarefinery.steps.synthesize.evol_instruct:EvolInstruct",
    "grounded": "datarefinery.steps.synthesize.grounded:Grounded",
    "paraphrase": "datarefinery.steps.augment.variants:Paraphrase",
    "style": "datarefinery.steps.augment.variants:Style",
    "counterfactual": "datarefinery.steps.augment.variants:Counterfactual",
    "label": "datarefinery.steps.augment.label:Label",
    "mix": "datarefinery.steps.augment.mix:Mix",
    "extrapolate": "datarefinery.steps.synthesize.extrapolate:Extrapolate",
    "qa_extrapolate": "datarefinery.steps.synthesize.qa_extrapolate:QAExtrapolate",
    "qa_span": "datarefinery.steps.curate.qa_span:QASpan",
    "solve": "datarefinery.steps.synthesize.solve:Solve",
    "responses": "datarefinery.steps.synthesize.responses:Responses",
    "preferences": "datarefinery.steps.curate.preferences:Preferences",
    "dialogue": "datarefinery.steps.synthesize.dialogue:Dialogue",
    "magpie": "datarefinery.steps.synthesize.magpie:Magpie",
}


def step_class(name: str) -> type[Step[Any]]:
    target = STEPS.get(name)
    if target is None:
        raise ConfigError(f"unknown step {name!r}; the steps are: {', '.join(sorted(STEPS))}")
    module_name, _, class_name = target.partition(":")
    cls: type[Step[Any]] = getattr(importlib.import_module(module_name), class_name)
    return cls
