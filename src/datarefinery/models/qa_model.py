"""The small extractive QA model of S3 on QA: a local BERT-style encoder fine-tuned with a span
head (a start and an end score per token), the SQuAD recipe at the loop's scale.

It reads a question and its context jointly (``[CLS] question [SEP] context [SEP]``, cut to
``max_length`` tokens, the context first) and predicts the context span with the best start +
end score, at most ``max_answer_tokens`` long. Weights come from a local folder, the bundled
all-MiniLM-L6-v2 by default (``models.finetune.resolve_weights``); the span head is new, so
training is seeded (head, order). A training answer that falls outside the kept window points at
``[CLS]`` (SQuAD 2's "no answer in view"): there is no sliding window, to keep it small.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from datarefinery.errors import UsageError
from datarefinery.models.finetune import _require, resolve_weights
from datarefinery.records import Record


def answer_start(record: Record) -> int:
    """Where the record's answer starts in its context: ``answer_start`` when it points at the
    answer (real SQuAD data), else the first occurrence (-1: nowhere).
    """
    context, answer = str(record.fields["context"]), str(record.fields["answer"])
    start = record.fields.get("answer_start")
    if isinstance(start, int) and context[start : start + len(answer)] == answer:
        return start
    return context.find(answer)


class SpanQA:
    """``fit(records)`` on records with ``context``, ``question`` and ``answer``;
    ``predict(records)`` gives an answer span of each record's context.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        weights: str | None = None,
        epochs: int = 2,
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        max_length: int = 384,
        max_answer_tokens: int = 30,
    ) -> None:
        _require()
        self.path = resolve_weights(weights)
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.max_answer_tokens = max_answer_tokens
        self._model: Any = None
        self._tokenizer: Any = None

    def _encode(self, records: Sequence[Record]) -> Any:
        return self._tokenizer(
            [str(r.fields["question"]) for r in records],
            [str(r.fields["context"]) for r in records],
            truncation="longest_first",
            max_length=self.max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )

    def _targets(self, encoded: Any, records: Sequence[Record]) -> tuple[list[int], list[int]]:
        starts, ends = [], []
        for row, record in enumerate(records):
            start = answer_start(record)
            end = start + len(str(record.fields["answer"]))
            first = last = 0  # [CLS]: the answer is not in the window
            if start >= 0:
                sequence = encoded.sequence_ids(row)
                offsets = encoded["offset_mapping"][row].tolist()
                tokens = [i for i, s in enumerate(sequence) if s == 1]
                inside = [i for i in tokens if offsets[i][1] > start and offsets[i][0] < end]
                if inside and offsets[tokens[-1]][1] >= end:
                    first, last = inside[0], inside[-1]
            starts.append(first)
            ends.append(last)
        return starts, ends

    def fit(self, records: Sequence[Record]) -> SpanQA:
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if not records:
            raise UsageError("cannot train a QA model on no records")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # "newly initialized qa_outputs" is the head we train; the bar is noise in a loop
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        torch.manual_seed(self.seed)
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self._model = AutoModelForQuestionAnswering.from_pretrained(
            self.path, local_files_only=True
        )
        optimizer = torch.optim.AdamW(self._model.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        self._model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(records), generator=generator).tolist()
            for begin in range(0, len(order), self.batch_size):
                batch = [records[i] for i in order[begin : begin + self.batch_size]]
                encoded = self._encode(batch)
                starts, ends = self._targets(encoded, batch)
                inputs = {k: v for k, v in encoded.items() if k != "offset_mapping"}
                loss = self._model(
                    **inputs,
                    start_positions=torch.tensor(starts),
                    end_positions=torch.tensor(ends),
                ).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        self._model.eval()
        return self

    def predict(self, records: Sequence[Record]) -> list[str]:
        import torch

        if self._model is None:
            raise RuntimeError("fit the model first")
        answers: list[str] = []
        # Sorted by length so each batch pads little; answers go back in the callers' order.
        order = sorted(range(len(records)), key=lambda i: len(str(records[i].fields["context"])))
        found: dict[int, str] = {}
        with torch.no_grad():
            for begin in range(0, len(order), 64):
                indices = order[begin : begin + 64]
                batch = [records[i] for i in indices]
                encoded = self._encode(batch)
                inputs = {k: v for k, v in encoded.items() if k != "offset_mapping"}
                output = self._model(**inputs)
                for row, index in enumerate(indices):
                    found[index] = self._span(encoded, row, batch[row], output, torch)
        answers = [found[i] for i in range(len(records))]
        return answers

    def _span(self, encoded: Any, row: int, record: Record, output: Any, torch: Any) -> str:
        """The best context span (start <= end, at most ``max_answer_tokens``) of one row."""
        sequence = encoded.sequence_ids(row)
        context_mask = torch.tensor([s == 1 for s in sequence])
        if not bool(context_mask.any()):
            return ""
        start = output.start_logits[row].masked_fill(~context_mask, float("-inf"))
        end = output.end_logits[row].masked_fill(~context_mask, float("-inf"))
        scores = start[:, None] + end[None, :]
        length = scores.shape[0]
        band = torch.ones(length, length, dtype=torch.bool).triu()
        band &= ~torch.ones(length, length, dtype=torch.bool).triu(self.max_answer_tokens)
        best = int(scores.masked_fill(~band, float("-inf")).argmax())
        first, last = divmod(best, length)
        offsets = encoded["offset_mapping"][row].tolist()
        return str(record.fields["context"])[offsets[first][0] : offsets[last][1]]
