import pytest

from datarefinery.steps.curate.dedup import Dedup, DedupConfig, lsh_bands, shingles
from tests.steps.curate.helpers import kept, records, rejected, run_step

BASE = (
    "The film follows a retired detective who returns to his home town to solve one last case, "
    "and the slow pace gives every scene room to breathe."
)


def test_shingles_and_bands() -> None:
    assert shingles("A b c d", 3) == ["a b c", "b c d"]
    assert shingles("Two words", 3) == ["two words"]
    bands = lsh_bands(0.8, 128)
    assert 128 % bands == 0 and 4 <= bands <= 32


def test_exact_ignores_case_and_spacing_and_names_the_original() -> None:
    outputs = run_step(
        Dedup(DedupConfig(method="exact")), records("Great  film", "great film", "x")
    )
    (dup,) = rejected(outputs)
    assert dup.record.id == "r1" and dup.reason == "duplicate"
    assert "of record r0" in dup.detail and dup.record.scores["dedup_duplicate_of"] == "r0"


def test_minhash_finds_near_duplicates_across_shards() -> None:
    near = BASE + " Recommended."  # one word added: Jaccard of word 3-grams 27/29
    other = "A loud action movie with a thin plot, bright colours and far too many explosions."
    outputs = run_step(Dedup(DedupConfig(method="minhash")), records(BASE, other, near), shards=3)
    assert [r.id for r in kept(outputs)] == ["r0", "r1"]
    (dup,) = rejected(outputs)
    assert dup.reason == "near_duplicate" and "of record r0" in dup.detail


def test_minhash_resume_rebuilds_the_index() -> None:
    step = Dedup(DedupConfig(method="minhash"))
    run_step(step, records(BASE))
    fresh = Dedup(DedupConfig(method="minhash"))
    run_step(fresh, [])
    fresh.restore(records(BASE))
    outputs = fresh.postprocess(list(records("unrelated words entirely here", BASE)))
    assert [getattr(o, "reason", "kept") for o in outputs] == ["kept", "near_duplicate"]


@pytest.mark.slow
def test_semantic_dedup_with_real_embeddings() -> None:
    texts = (
        "I loved this movie, the acting was wonderful.",
        "I adored this film; the performances were wonderful.",
        "The soup at this restaurant was cold and salty.",
    )
    outputs = run_step(Dedup(DedupConfig(method="semantic", threshold=0.75)), records(*texts))
    (dup,) = rejected(outputs)
    assert dup.record.id == "r1" and dup.reason == "semantic_duplicate"
    assert "same meaning as record r0" in dup.detail
