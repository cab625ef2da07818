"""Surrogates must not be reversible: whoever holds the published dataset and its manifest, and a
list of candidate originals, must not be able to tell which original became which fake.

The attack recomputes the fake of every candidate with every public input: the run seed and the
record ids (which decided the fakes before they were keyed), and the library's own planner keyed
with every string the manifest holds. Only the owner, who can read OUT/secrets/, can do it."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.detect.base import Span
from datarefinery.io.read import read_records
from datarefinery.steps.refine import surrogates
from datarefinery.steps.refine.surrogates import SurrogatePlanner

FIRST = ["anna", "piotr", "maria", "jan", "olga", "tomas", "lena", "ivan", "sara", "omar"]
LAST = ["kowalski", "nowak", "berg", "silva", "moreau", "jensen"]
# The attacker's list of originals: every address the records use, and as many that they do not.
CANDIDATES = [f"{first}.{last}@example.org" for first in FIRST for last in LAST]
USED = CANDIDATES[::2]


def run_dirs(tmp_path: Path, consistency: str, name: str = "out", **spec: Any) -> Path:
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for index, email in enumerate(USED):
            text = f"Please forward the invoice to {email} before Friday (ticket {index})."
            handle.write(json.dumps({"id": f"r{index}", "text": text}) + "\n")
    options = {"mode": "surrogate", "consistency": consistency, "detector": {"kind": "regex"}}
    spec = {"seed": 3, "input": str(source), "steps": [{"dirs": options}], **spec}
    result = datarefinery.run(spec, tmp_path / name, diversity=False)
    assert result.status == "complete" and result.dataset_size == len(USED)
    return tmp_path / name


def published(out: Path) -> dict[str, set[str]]:
    """Record id -> the fakes the dataset shows for it (the provenance lists them)."""
    shown: dict[str, set[str]] = {}
    for record in read_records(out / "dataset.jsonl"):
        replaced = record.provenance.conditioning["replaced"]
        shown[record.id] = {r["replacement"] for r in replaced}
        assert not any(email in record.fields["text"] for email in USED)
    return shown


_FAKER = surrogates._faker()


def seed_derivation(seed: int, scope: str, original: str) -> str:
    """The fake as a function of public inputs alone (seed, record id, type, value)."""
    fake = _FAKER
    material = f"{scope}\x1fEMAIL_ADDRESS\x1f{original}\x1f0"
    fake.seed_instance(int(hashlib.sha256(material.encode()).hexdigest()[:15], 16))
    return str(fake.email())


def public_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from public_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from public_strings(item)
    elif value is not None:
        yield str(value)


def planners_from_public(manifest: dict[str, Any], consistency: str) -> Iterator[SurrogatePlanner]:
    """The library's planner, built in every way the public material allows (a key is at least
    32 bytes, so shorter strings are no candidates)."""
    seed = manifest["spec"]["seed"]
    with contextlib.suppress(TypeError):  # a planner that needs a key refuses a seed
        yield SurrogatePlanner("surrogate", consistency, seed=seed)  # type: ignore[call-arg]
    for text in sorted({s for s in public_strings(manifest) if len(s) >= 32}):
        with contextlib.suppress(TypeError, ValueError):
            yield SurrogatePlanner("surrogate", consistency, text.encode())  # type: ignore[arg-type]


def recovered(out: Path, consistency: str, planners: list[SurrogatePlanner]) -> set[str]:
    """The originals whose published fake the attack reproduces in the record that held them.

    Every candidate is tried, as an attacker would; a guess only counts where it is right (the
    record's true original). A fake that happens to equal the guess for another candidate is a
    chance collision of two Faker draws, not a recovery, and with every long manifest string
    tried as a key such collisions do occur.
    """
    manifest = json.loads((out / "manifest.json").read_text())
    seed = manifest["spec"]["seed"]
    truth = {f"r{index}": email for index, email in enumerate(USED)}
    found: set[str] = set()
    for record_id, fakes in published(out).items():
        scope = str(seed) if consistency == "dataset" else f"{seed}\x1f{record_id}"
        for candidate in CANDIDATES:
            guesses = {seed_derivation(seed, scope, candidate)}
            span = Span("EMAIL_ADDRESS", 0, len(candidate), candidate)
            guesses |= {p.plan(record_id, [span])[0].replacement for p in planners}
            if guesses & fakes and candidate == truth[record_id]:
                found.add(candidate)
    return found


@pytest.mark.parametrize("consistency", ["dataset", "record"])
def test_a_dictionary_attack_with_the_manifest_and_the_dataset_recovers_nothing(
    tmp_path: Path, consistency: str
) -> None:
    out = run_dirs(tmp_path, consistency)
    manifest = json.loads((out / "manifest.json").read_text())
    attack = list(planners_from_public(manifest, consistency))
    assert attack  # the manifest's long strings (paths, hashes) are all tried as keys
    assert recovered(out, consistency, attack) == set()
    # The same attack with the key, which only the run's owner can read, recovers every value:
    # the attack is sound, and the key alone is what stops it.
    key = (out / "secrets" / "surrogate.key").read_bytes().strip()
    owner = SurrogatePlanner("surrogate", consistency, key)  # type: ignore[arg-type]
    assert recovered(out, consistency, [owner]) == set(USED)


def test_consistency_holds_within_a_run_and_a_shared_key_spans_runs(tmp_path: Path) -> None:
    """Within a run (dataset consistency) a value keeps its fake across records, and a resume
    keeps it; separate runs (a train and a test split) share fakes only when they share a key."""

    def fake_of(out: Path) -> str:
        texts = [r.fields["text"] for r in read_records(out / "dataset.jsonl")]
        return texts[0].split(" to ")[1].split(" before")[0]

    train = run_dirs(tmp_path, "dataset", "train")
    again = run_dirs(tmp_path, "dataset", "train")  # resumed: the run's own key
    other = run_dirs(tmp_path, "dataset", "other")  # a new run: a new random key
    assert fake_of(again) == fake_of(train) != fake_of(other)

    key = tmp_path / "pii.key"
    key.write_text("9f" * 32 + "\n")
    key.chmod(0o600)
    shared = {"surrogate_key": {"file": str(key)}}
    split_a = run_dirs(tmp_path, "dataset", "split-a", **shared)
    split_b = run_dirs(tmp_path, "dataset", "split-b", **shared)
    assert fake_of(split_a) == fake_of(split_b)
    assert (split_a / "dataset.jsonl").read_bytes() == (split_b / "dataset.jsonl").read_bytes()
    assert not (split_a / "secrets" / "surrogate.key").exists()
