"""Splitting long texts into chunks and joining the rewrites back."""

from __future__ import annotations

import pytest

from datarefinery.steps.refine.chunks import join_chunks, split_chunks

PARAGRAPHS = (
    "  Dear Ms. Anna Kowalski, thank you for your letter. We read it twice.\n\n"
    "Your account 4111 1111 1111 1111 is closed. Call 555-123-4567 if you disagree!\n"
    "\n\t The office at 12 Main Street opens at nine. Bring your ID.   \n"
)


def test_a_text_that_fits_is_one_chunk_with_its_whitespace_kept_outside() -> None:
    (chunk,) = split_chunks(PARAGRAPHS, 10_000)
    assert chunk.lead == "  " and chunk.tail == "   \n"
    assert chunk.body == PARAGRAPHS[chunk.start : chunk.end]
    assert join_chunks([chunk], [chunk.body]) == PARAGRAPHS


@pytest.mark.parametrize("size", [30, 50, 80, 120])
def test_chunks_cover_the_text_with_offsets_and_whitespace_preserved(size: int) -> None:
    chunks = split_chunks(PARAGRAPHS, size)
    assert len(chunks) > 1
    assert join_chunks(chunks, [c.body for c in chunks]) == PARAGRAPHS
    for chunk in chunks:
        assert PARAGRAPHS[chunk.start : chunk.end] == chunk.body
        assert chunk.body == chunk.body.strip()
        assert len(chunk.lead + chunk.body + chunk.tail) <= size


def test_paragraphs_first_then_sentences() -> None:
    chunks = split_chunks(PARAGRAPHS, 90)
    assert chunks[0].body.endswith("We read it twice.")
    assert chunks[0].tail == "\n\n"
    assert chunks[1].body.startswith("Your account")
    sentences = split_chunks("One two three. Four five six. Seven eight nine.", 32)
    assert [c.body for c in sentences] == ["One two three. Four five six.", "Seven eight nine."]


def test_a_cut_never_falls_inside_a_protected_span() -> None:
    text = "word " * 8 + "Anna Maria Kowalska-Nowak " + "word " * 8
    start = text.index("Anna")
    span = (start, start + len("Anna Maria Kowalska-Nowak"))
    unprotected = split_chunks(text, 50)
    assert any(span[0] < c.end < span[1] for c in unprotected)  # the span would be cut
    chunks = split_chunks(text, 50, [span])
    assert join_chunks(chunks, [c.body for c in chunks]) == text
    holder = [c for c in chunks if c.start <= span[0] and span[1] <= c.end]
    assert len(holder) == 1
    for chunk in chunks:
        assert not span[0] < chunk.end < span[1] and not span[0] < chunk.start < span[1]


def test_a_span_longer_than_a_chunk_stays_whole_and_overlapping_spans_end() -> None:
    text = "a " * 5 + "x" * 40 + " b" * 5
    span = (10, 50)
    chunks = split_chunks(text, 20, [span, (30, 55)])
    assert join_chunks(chunks, [c.body for c in chunks]) == text
    assert any(c.start <= 10 and c.end >= 50 for c in chunks)


def test_a_word_longer_than_a_chunk_is_cut_hard_and_a_mismatch_is_refused() -> None:
    chunks = split_chunks("y" * 25, 10)
    assert [len(c.body) for c in chunks] == [10, 10, 5]
    with pytest.raises(ValueError, match="2 rewrites"):
        join_chunks(chunks, ["a", "b"])
    with pytest.raises(ValueError):
        split_chunks("text", 0)
