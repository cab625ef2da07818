"""Judges and labellers measured against people: the decisions of ``OUT/review/decisions.sqlite``
joined with what the run's ``label`` and ``judge`` steps said about the same records.

- A labeller (``label`` step): the person's label is the model's after ``accept``, theirs after
  ``correct`` (or an ``edit`` that sets one); a record the person rejected has no label and is
  left out. Agreement is Cohen's kappa over the task's labels.
- A pointwise judge: the person keeps a record they ``accept`` and drops one they ``reject``; the
  judge keeps a mean score >= the threshold (the step's ``threshold``, else the scale's midpoint
  3). ``correct`` and ``edit`` say the record needed a fix, neither plainly good nor plainly bad,
  so they are left out and counted. The threshold that agrees best is searched among the scores.
- A pairwise judge: how often the first-shown candidate wins a verdict, and how often the longer
  candidate wins a kept preference. These need no person.

Scores are read from each step's own shards (kept and rejected), so a later step, or the review
step applying people's labels, does not overwrite what the model said.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datarefinery.decisions import Decision, DecisionStore
from datarefinery.evaluate.agreement import (
    best_threshold,
    cohen_kappa,
    kappa_interval,
    keep_pairs,
    wilson_interval,
)
from datarefinery.records import Record, Rejected
from datarefinery.rundir import RunDir, StepDir

MIN_DECISIONS = 10  # below this, a kappa or a best threshold is noise, and the report says so
MIN_VERDICTS = 10
DEFAULT_JUDGE_THRESHOLD = 3.0
NOT_ENOUGH = "not enough decisions"


@dataclass(frozen=True, slots=True)
class Agreement:
    """Person against model on ``n`` records; ``kappa`` and its 95 % bootstrap interval are
    ``None`` with a ``note`` when there are too few records or kappa is undefined.
    """

    n: int
    kappa: float | None = None
    low: float | None = None
    high: float | None = None
    observed: float | None = None
    note: str = ""

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> Agreement:
        n = len(pairs)
        if n < MIN_DECISIONS:
            return cls(n, note=f"{NOT_ENOUGH} (n={n}, need {MIN_DECISIONS})")
        kappa = cohen_kappa(pairs)
        observed = round(sum(1 for a, b in pairs if a == b) / n, 4)
        if kappa is None:
            return cls(n, observed=observed, note="kappa undefined: one answer only")
        interval = kappa_interval(pairs)
        low, high = (round(v, 4) for v in interval) if interval else (None, None)
        return cls(n, round(kappa, 4), low, high, observed)


@dataclass(frozen=True, slots=True)
class Share:
    """``hits`` of ``n`` with a 95 % Wilson interval, or a ``note`` when ``n`` is too small."""

    hits: int
    n: int
    share: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""

    @classmethod
    def of(cls, hits: int, n: int, what: str, minimum: int = MIN_VERDICTS) -> Share:
        if n < minimum:
            return cls(hits, n, note=f"not enough {what} (n={n}, need {minimum})")
        low, high = wilson_interval(hits, n) or (0.0, 1.0)
        return cls(hits, n, round(hits / n, 4), round(low, 4), round(high, 4))


@dataclass(slots=True)
class LabellerCalibration:
    step: str
    agreement: Agreement
    left_out: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class JudgeCalibration:
    step: str
    threshold: float
    agreement: Agreement
    best: dict[str, Any] | None = None
    criteria: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class PairwiseBias:
    """``position``: verdicts won by the first-shown candidate (two verdicts per pair, one per
    order; they are not independent, so the interval is somewhat too narrow). ``length``: kept
    preferences whose chosen answer has more words (pairs of equal length left out).
    """

    step: str
    pairs: int
    ties: int
    inconsistent: int
    position: Share
    length: Share


@dataclass(slots=True)
class Calibration:
    decisions: int
    labellers: list[LabellerCalibration] = field(default_factory=list)
    judges: list[JudgeCalibration] = field(default_factory=list)
    pairwise: list[PairwiseBias] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _step_outputs(step_dir: StepDir) -> tuple[list[Record], list[Rejected]]:
    kept: list[Record] = []
    dropped: list[Rejected] = []
    for marker in sorted(step_dir.path.glob("shard-*.done")):
        index = int(marker.name.removeprefix("shard-").removesuffix(".done"))
        kept.extend(step_dir.records(index))
        dropped.extend(Rejected.from_dict(json.loads(x)) for x in step_dir.rejected_lines(index))
    return kept, dropped


def _labeller(
    name: str, records: list[Record], label_field: str, decisions: dict[str, Decision]
) -> LabellerCalibration:
    pairs: list[tuple[str, str]] = []
    left_out: dict[str, int] = {}
    for record in records:
        decision = decisions.get(record.id)
        model = record.fields.get(label_field)
        if decision is None or "label_agreement" not in record.scores or model is None:
            continue
        if decision.action == "reject":
            left_out["rejected by a person"] = left_out.get("rejected by a person", 0) + 1
            continue
        person = decision.label if decision.label is not None else model
        pairs.append((str(person), str(model)))
    return LabellerCalibration(name, Agreement.of(pairs), left_out)


def _judge(
    name: str, records: list[Record], threshold: float, decisions: dict[str, Decision]
) -> JudgeCalibration:
    scored: list[tuple[float, bool]] = []
    criteria: dict[str, list[tuple[float, bool]]] = {}
    left_out: dict[str, int] = {}
    for record in records:
        decision = decisions.get(record.id)
        score = record.scores.get(name)
        if decision is None or not isinstance(score, int | float):
            continue
        if decision.action in ("correct", "edit"):
            key = "corrected by a person" if decision.action == "correct" else "edited by a person"
            left_out[key] = left_out.get(key, 0) + 1
            continue
        kept = decision.action == "accept"
        scored.append((float(score), kept))
        for key, value in record.scores.items():
            if key.startswith(f"{name}_") and isinstance(value, int | float):
                criteria.setdefault(key.removeprefix(f"{name}_"), []).append((float(value), kept))
    calibration = JudgeCalibration(name, threshold, Agreement.of(keep_pairs(scored, threshold)))
    calibration.left_out = left_out
    if len(scored) >= MIN_DECISIONS:
        calibration.best = _fit(scored)
        calibration.criteria = {c: fit for c, s in criteria.items() if (fit := _fit(s))}
    return calibration


def _fit(scored: list[tuple[float, bool]]) -> dict[str, Any] | None:
    fit = best_threshold(scored)
    if fit is None:
        return None
    agreement = Agreement.of(keep_pairs(scored, fit.threshold))
    ba = fit.balanced_accuracy
    return {
        "threshold": fit.threshold,
        "agreement": asdict(agreement),
        "balanced_accuracy": None if ba is None else round(ba, 4),
    }


def _words(value: Any) -> int:
    return len(str(value).split())


def _pairwise(name: str, kept: list[Record], dropped: list[Rejected]) -> PairwiseBias:
    # A kept preference survived the swap: the winner was shown first in one order and second in
    # the other. A pair dropped as position bias names the slot that won both times in its detail.
    consistent = [r for r in kept if r.provenance.technique == "pairwise_judge"]
    first_both = {r.detail for r in dropped if "preferred the first-shown" in r.detail}
    second_both = {r.detail for r in dropped if "preferred the second-shown" in r.detail}
    ties = {r.detail for r in dropped if r.reason == "tie"}
    verdicts = 2 * (len(consistent) + len(first_both) + len(second_both))
    first_wins = len(consistent) + 2 * len(first_both)
    unequal = [
        r for r in consistent if _words(r.fields.get("chosen")) != _words(r.fields.get("rejected"))
    ]
    longer = sum(
        1 for r in unequal if _words(r.fields.get("chosen")) > _words(r.fields.get("rejected"))
    )
    return PairwiseBias(
        step=name,
        pairs=len(consistent) + len(first_both) + len(second_both) + len(ties),
        ties=len(ties),
        inconsistent=len(first_both) + len(second_both),
        position=Share.of(first_wins, verdicts, "verdicts"),
        length=Share.of(longer, len(unequal), "preferences"),
    )


def calibrate(out: str | Path) -> Calibration | None:
    """The calibration figures of the run directory ``out``; ``None`` when nobody decided yet."""
    root = Path(out)
    decisions = DecisionStore.of_run(root).latest()
    if not decisions:
        return None
    manifest = RunDir(root).read_manifest()
    spec_steps: list[dict[str, Any]] = list(manifest.spec.get("steps", [])) if manifest else []
    task = manifest.task if manifest else None
    result = Calibration(decisions=len(decisions))
    for path in sorted((root / "steps").glob("[0-9][0-9]-*")):
        number, name = path.name.split("-", 1)
        entry = spec_steps[int(number) - 1] if int(number) <= len(spec_steps) else {}
        kind, options = next(iter(entry.items())) if entry else (name, {})
        options = options or {}
        if kind not in ("label", "judge"):
            continue
        kept, dropped = _step_outputs(StepDir(path))
        records = kept + [r.record for r in dropped]
        if kind == "label" and task is not None and task.label_field:
            result.labellers.append(_labeller(name, records, task.label_field, decisions))
        elif kind == "judge" and options.get("mode") == "pairwise":
            result.pairwise.append(_pairwise(name, kept, dropped))
        elif kind == "judge":
            threshold = float(options.get("threshold") or DEFAULT_JUDGE_THRESHOLD)
            result.judges.append(_judge(name, records, threshold, decisions))
    return result


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _kappa(agreement: dict[str, Any]) -> tuple[str, str]:
    if agreement["kappa"] is None:
        return agreement["note"], f"n={agreement['n']}"
    interval = ""
    if agreement["low"] is not None:
        interval = f" [{_num(agreement['low'])}, {_num(agreement['high'])}]"
    return (
        f"{_num(agreement['kappa'])}{interval}",
        f"n={agreement['n']}, raw agreement {_num(agreement['observed'])}",
    )


def _share(share: dict[str, Any], of: str) -> tuple[str, str]:
    if share["share"] is None:
        return share["note"], f"{share['hits']} of {share['n']} {of}"
    return (
        f"{_num(share['share'])} [{_num(share['low'])}, {_num(share['high'])}]",
        f"{share['hits']} of {share['n']} {of}",
    )


def _left_out(counts: dict[str, int]) -> str:
    return "".join(f"; left out: {n} {why}" for why, n in counts.items())


def figure_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, detail) rows of ``Calibration.to_dict()``, the one wording that the CLI
    table, the report page and the card all print. Intervals are 95 %: bootstrap for kappa,
    Wilson for shares.
    """
    rows: list[tuple[str, str, str]] = []
    for labeller in data.get("labellers", []):
        value, detail = _kappa(labeller["agreement"])
        rows.append(
            (f"{labeller['step']}: label kappa", value, detail + _left_out(labeller["left_out"]))
        )
    for judge in data.get("judges", []):
        value, detail = _kappa(judge["agreement"])
        figure = f"{judge['step']}: kappa at threshold {_num(judge['threshold'])}"
        rows.append((figure, value, detail + _left_out(judge["left_out"])))
        fits = [("", judge["best"])] + [(f" ({c})", f) for c, f in judge["criteria"].items()]
        for suffix, fit in fits:
            if fit is None:
                continue
            value, detail = _kappa(fit["agreement"])
            rows.append(
                (
                    f"{judge['step']}{suffix}: best threshold",
                    f"{_num(fit['threshold'])} (kappa {value})",
                    f"{detail}, balanced accuracy {_num(fit['balanced_accuracy'])}",
                )
            )
    for bias in data.get("pairwise", []):
        value, detail = _share(bias["position"], "verdicts")
        extra = (
            f"; {bias['pairs']} pairs: {bias['inconsistent']} flipped with the order, "
            f"{bias['ties']} tied"
        )
        rows.append((f"{bias['step']}: first-shown wins", value, detail + extra))
        value, detail = _share(bias["length"], "kept preferences")
        rows.append((f"{bias['step']}: longer wins", value, detail))
    return rows
