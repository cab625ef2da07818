"""``review``: apply people's decisions (``refinery review OUT``) to the records reaching it.

For each record, the decision in force in ``OUT/review/decisions.sqlite`` (see
``datarefinery.decisions``):

- ``accept`` keeps it as it is; ``correct`` replaces its label; ``edit`` replaces the fields the
  decision names (checked against the task's fields like ``validate`` does: a bad edit is rejected
  as ``invalid_edit`` with the problem);
- ``reject`` rejects it as ``reviewer_rejected`` with the reviewer's reason.

Every decided record's provenance gets ``conditioning["reviewed"] = {by, decision, at}``.

Undecided records pass unchanged, unless ``require`` says they block: ``routed`` (default) for
records an earlier step routed to review (``scores["route"]``), ``all`` for every record, ``none``
for no record. While any record blocks, the run stops before this step with status
``waiting_for_review`` (exit code 4); run it again once people have decided. The step's identity
includes a digest of the decisions on its input, so a decision made or changed after the step
committed makes the next run redo it, and every step after it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from datarefinery.decisions import Decision, DecisionStore
from datarefinery.errors import ConfigError
from datarefinery.records import Record, Rejected
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Gate, Output, RecordStep, StepConfig, StepContext
from datarefinery.steps.curate.validate import Validate, ValidateConfig


class ReviewConfig(StepConfig):
    require: Literal["routed", "all", "none"] = Field(
        default="routed",
        description="which undecided records stop the run: routed ones, all, or none",
    )


class DecisionApplier:
    """Applies decisions to records under a step's context (its name and task)."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.task = ctx.task
        self._validators: dict[tuple[str, ...], Validate] = {}

    def apply(self, record: Record, decision: Decision) -> Output:
        name = self.ctx.name
        conditioning = {**record.provenance.conditioning, "reviewed": decision.provenance()}
        provenance = dataclasses.replace(record.provenance, conditioning=conditioning)
        reviewed = Record(record.id, dict(record.fields), provenance, dict(record.scores))
        if decision.action == "accept":
            return reviewed
        if decision.action == "reject":
            detail = decision.reason or f"rejected by {decision.by}"
            return Rejected(reviewed, name, "reviewer_rejected", detail)
        changes = dict(decision.fields) if decision.action == "edit" else {}
        if decision.label is not None:
            label_field = self.task.label_field if self.task else None
            if label_field is None:
                detail = f"{decision.by} set label {decision.label!r} but the task has no label"
                return Rejected(reviewed, name, "invalid_edit", detail)
            changes[label_field] = decision.label
        return self._edited(reviewed, changes, decision)

    def _edited(self, record: Record, changes: dict[str, object], decision: Decision) -> Output:
        name = self.ctx.name
        edited = Record(record.id, {**record.fields, **changes}, record.provenance, record.scores)
        if self.task is None:  # no task: no schema to check the edit against
            return edited
        unknown = sorted(set(changes) - set(self.task.fields))
        if unknown:
            detail = f"{decision.by}'s {decision.action} sets {unknown}, not fields of the task"
            return Rejected(record, name, "invalid_edit", detail)
        checked = self._validator(tuple(sorted(changes))).apply(edited)
        if isinstance(checked, Rejected):
            detail = f"{decision.by}'s {decision.action}: {checked.detail}"
            return Rejected(record, name, "invalid_edit", detail)
        return checked

    def _validator(self, names: tuple[str, ...]) -> Validate:
        if names not in self._validators:
            validator = Validate(ValidateConfig(fields=list(names)))
            validator.setup(self.ctx)
            self._validators[names] = validator
        return self._validators[names]


class Review(RecordStep[ReviewConfig]):
    name = "review"
    Config = ReviewConfig
    gated = True

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.applier = DecisionApplier(ctx)
        self.decisions: dict[str, Decision] | None = None

    @property
    def store(self) -> DecisionStore:
        if self.ctx.run_dir is None:
            raise ConfigError(f"step {self.ctx.name} reads review decisions: run it with -o OUT")
        return DecisionStore.of_run(self.ctx.run_dir)

    def _blocks(self, record: Record) -> bool:
        require = self.config.require
        return require == "all" or (require == "routed" and bool(record.scores.get("route")))

    def gate(self, records: list[Record]) -> Gate:
        # The digest is read before the decisions applied: one made in between makes the stored
        # identity older than what was applied, so the next run redoes the step (never skips it).
        identity = self.store.digest(r.id for r in records)
        self.decisions = self.store.latest()
        waiting = sum(1 for r in records if r.id not in self.decisions and self._blocks(r))
        which = "routed to review" if self.config.require == "routed" else "undecided"
        out = self.ctx.run_dir
        message = (
            f"{waiting} record(s) {which} wait for people at step {self.ctx.name}: run "
            f"`refinery review {out} --reviewer NAME`, decide them, then run this command again"
        )
        return Gate(identity, waiting, message)

    def apply(self, record: Record) -> Output:
        if self.decisions is None:  # set up elsewhere than the gate (a Ray worker)
            self.decisions = self.store.latest()
        decision = self.decisions.get(record.id)
        return record if decision is None else self.applier.apply(record, decision)


def reviewed_records(out: Path, ctx: StepContext) -> list[Record]:
    """The records people accepted, corrected or edited in run directory ``out``, with their
    decisions applied, in a stable order (by record id); each decision is applied to the record
    as the last step that committed it left it (kept or rejected).
    """
    decisions = DecisionStore.of_run(out).latest()
    found: dict[str, Record] = {}
    steps = out / "steps"
    for step_path in sorted(steps.iterdir()) if steps.is_dir() else []:
        if step_path.name.startswith("."):
            continue
        step_dir = StepDir(step_path)
        for marker in sorted(step_path.glob("shard-*.done")):
            index = int(marker.stem.removeprefix("shard-"))
            for record in step_dir.records(index):
                if record.id in decisions:
                    found[record.id] = record
            for line in step_dir.rejected_lines(index):
                rejected = Rejected.from_dict(json.loads(line)).record
                if rejected.id in decisions:
                    found[rejected.id] = rejected
    applier = DecisionApplier(ctx)
    kept = (applier.apply(found[i], decisions[i]) for i in sorted(found))
    return [r for r in kept if isinstance(r, Record)]
