"""``preferences``: scored candidates → one DPO preference pair per prompt.

Records sharing the value of ``group_by`` (the prompt) are candidates for it; the one with the
highest ``scores[score]`` (a ``judge`` step's mean, by default) becomes ``chosen``, the lowest
``rejected``, and ``margin`` is their score difference (UltraFeedback-style binarization). Ties
for best or worst go to the candidate that came first, so reruns pair the same way.

Nothing is dropped silently: a group whose best and worst score are equal is rejected as ``tie``,
one whose margin is below ``min_margin`` as ``small_margin``, a lone candidate as ``unpaired``, a
record without the score as ``unscored``, and the candidates between best and worst as
``middle_candidate``.
"""

from __future__ import annotations

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import Output, Step, StepConfig


class PreferencesConfig(StepConfig):
    score: str = Field(default="judge", description="the scores key to rank candidates by")
    group_by: str = Field(default="prompt", description="the field candidates of a prompt share")
    compare: str = Field(default="response", description="the field that becomes chosen/rejected")
    min_margin: float = Field(
        default=0.0, ge=0, description="reject pairs whose score difference is below this"
    )


class Preferences(Step[PreferencesConfig]):
    name = "preferences"
    Config = PreferencesConfig

    def needs_whole_input(self) -> bool:
        return True

    def reads(self, task: TaskSpec | None) -> set[str]:
        return {self.config.group_by, self.config.compare}

    def writes(self, task: TaskSpec | None) -> set[str]:
        return {self.config.group_by, "chosen", "rejected", "margin"}

    async def process(self, batch: list[Record]) -> list[Output]:
        groups: dict[str, list[tuple[float, Record]]] = {}
        outputs: list[Output] = []
        for record in batch:
            value = record.scores.get(self.config.score)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                detail = f"no numeric score {self.config.score!r} to rank it by"
                outputs.append(Rejected(record, self.ctx.name, "unscored", detail))
                continue
            key = str(record.fields.get(self.config.group_by, ""))
            groups.setdefault(key, []).append((float(value), record))
        for key, members in groups.items():
            outputs.extend(self._pair(key, members))
        return outputs

    def _pair(self, key: str, members: list[tuple[float, Record]]) -> list[Output]:
        name, shown = self.ctx.name, key[:60]
        if len(members) < 2:
            detail = f"the only scored candidate for {self.config.group_by} = {shown!r}"
            return [Rejected(members[0][1], name, "unpaired", detail)]
        # max/min keep the first of equal scores: the earlier candidate wins a tie.
        best = max(range(len(members)), key=lambda i: (members[i][0], -i))
        worst = min(range(len(members)), key=lambda i: (members[i][0], i))
        high, low = members[best][0], members[worst][0]
        margin = round(high - low, 4)
        if margin == 0:
            detail = f"all {len(members)} candidates scored {high:g}: no preference"
            return [Rejected(r, name, "tie", detail) for _, r in members]
        if margin < self.config.min_margin:
            detail = f"margin {margin:g} < min_margin {self.config.min_margin:g}"
            return [Rejected(r, name, "small_margin", detail) for _, r in members]
        chosen, rejected = members[best][1], members[worst][1]
        outputs: list[Output] = [self._preference(key, chosen, rejected, high, low, margin)]
        for i, (value, record) in enumerate(members):
            if i not in (best, worst):
                detail = f"scored {value:g}, between the pair's {low:g} and {high:g}"
                outputs.append(Rejected(record, name, "middle_candidate", detail))
        return outputs

    def _preference(
        self, key: str, chosen: Record, rejected: Record, high: float, low: float, margin: float
    ) -> Record:
        group_by, compare = self.config.group_by, self.config.compare
        return Record(
            id=stable_id(self.ctx.name, chosen.id, rejected.id),
            fields={
                group_by: chosen.fields.get(group_by, key),
                "chosen": chosen.fields.get(compare, ""),
                "rejected": rejected.fields.get(compare, ""),
                "margin": margin,
            },
            provenance=Provenance(
                step=self.ctx.name,
                technique="best_worst",
                parent_ids=[chosen.id, rejected.id],
                conditioning={
                    "score": self.config.score,
                    "chosen_model": chosen.provenance.model,
                    "rejected_model": rejected.provenance.model,
                },
                source=chosen.provenance.source,
            ),
            scores={"chosen_score": high, "rejected_score": low},
        )
