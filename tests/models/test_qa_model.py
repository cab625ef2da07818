"""The span QA model: where its training targets point, and (slow) that it trains, is seeded and
answers with spans of the context.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datarefinery.loop.qa import load_qa
from datarefinery.models.qa_model import SpanQA, answer_start
from datarefinery.records import Record
from tests.support.qa import qa_folder


def qa_record(context: str, answer: str, start: int | None = None) -> Record:
    fields = {"context": context, "question": "Which?", "answer": answer, "answer_start": start}
    return Record(id="r", fields=fields)


def test_answer_start_prefers_a_correct_offset_then_the_first_occurrence() -> None:
    context = "It opened in 1838; by 1838 standards it was huge."
    assert answer_start(qa_record(context, "1838", 22)) == 22
    assert answer_start(qa_record(context, "1838", 5)) == 13  # a wrong offset is not trusted
    assert answer_start(qa_record(context, "1838")) == 13
    assert answer_start(qa_record(context, "1900")) == -1


def test_targets_cover_the_answer_tokens_or_point_at_cls() -> None:
    from transformers import AutoTokenizer

    model = SpanQA(max_length=24)
    model._tokenizer = AutoTokenizer.from_pretrained(model.path, local_files_only=True)
    context = "The store opened in 1838 in Newcastle, founded by Emerson Bainbridge. " * 3
    records = [
        qa_record(context, "Emerson Bainbridge"),
        qa_record(context.replace("1838", "1700", 1), "Gordon Graham"),  # nowhere: [CLS]
    ]
    # the second copy of the paragraph is cut off at 24 tokens; the first answer is kept
    encoded = model._encode(records)
    starts, ends = model._targets(encoded, records)
    offsets = encoded["offset_mapping"][0].tolist()
    assert context[offsets[starts[0]][0] : offsets[ends[0]][1]] == "Emerson Bainbridge"
    assert (starts[1], ends[1]) == (0, 0)
    cut = [qa_record("Words " * 40 + "and at the end Emerson Bainbridge.", "Emerson Bainbridge")]
    assert model._targets(model._encode(cut), cut) == ([0], [0])  # beyond the window


@pytest.mark.slow
def test_it_trains_seeded_and_answers_with_spans(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    records = load_qa(qa_folder(tmp_path) / "validation.jsonl")
    options = {"epochs": 3, "learning_rate": 3e-4, "batch_size": 3, "max_length": 64}
    first = SpanQA(seed=1, **options).fit(records).predict(records)
    second = SpanQA(seed=1, **options).fit(records).predict(records)
    assert first == second
    for record, answer in zip(records, first, strict=True):
        assert answer and answer in str(record.fields["context"])
