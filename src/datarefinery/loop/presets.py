"""The datasets ``refinery experiment s3 --data DIR`` knows by folder name: the S3 paper's IMDb,
RTE and QNLI, each a task, and for sentence pairs the field copied from the pool (``given``).
Any other dataset is described by an S3 spec (``--spec FILE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datarefinery.errors import UsageError


@dataclass(frozen=True)
class Preset:
    """How to run a dataset: its task, how to read its files, how to synthesize it."""

    task: dict[str, Any]
    given: list[str]  # fields copied from the pool / the example (sentence pairs)

    @property
    def written(self) -> list[str]:
        return [f for f in self.task["fields"] if f != "label" and f not in self.given]


_NLI_LABELS = {
    "entailment": "the first sentence proves the second true",
    "not_entailment": "the first sentence does not prove the second (it is false or unknown)",
}

PRESETS: dict[str, Preset] = {
    "imdb": Preset(
        task={
            "description": "Sentiment classification of English movie reviews, like IMDb.",
            "fields": {
                "text": {
                    "description": "a movie review of two to four sentences written by a viewer",
                    "min_chars": 40,
                    "max_chars": 300,
                },
                "label": {"type": "label"},
            },
            "labels": {
                "positive": "the reviewer liked the movie",
                "negative": "the reviewer disliked the movie",
            },
        },
        given=[],
    ),
    "rte": Preset(
        task={
            "description": "Textual entailment: is the hypothesis true whenever the premise is?",
            "fields": {
                "premise": {"description": "a news sentence", "max_chars": 600},
                "hypothesis": {
                    "description": "one short sentence about the premise",
                    "min_chars": 10,
                    "max_chars": 160,
                },
                "label": {"type": "label"},
            },
            "labels": _NLI_LABELS,
        },
        given=["premise"],
    ),
    "qnli": Preset(
        task={
            "description": "Question answering NLI: does the sentence answer the question?",
            "fields": {
                "question": {
                    "description": "one question a reader could ask",
                    "min_chars": 10,
                    "max_chars": 160,
                },
                "sentence": {"description": "a sentence from Wikipedia", "max_chars": 600},
                "label": {"type": "label"},
            },
            "labels": {
                "entailment": "the sentence answers the question",
                "not_entailment": "the sentence does not answer the question",
            },
        },
        given=["sentence"],
    ),
}


def preset_for(data: Path) -> Preset:
    preset = PRESETS.get(data.resolve().name.lower())
    if preset is None:
        raise UsageError(
            f"no preset for {data}: --data knows {', '.join(sorted(PRESETS))} and adversarial_qa "
            "(extractive QA) (a folder of that name with validation.jsonl and test.jsonl); "
            "describe any other labelled dataset in an S3 spec and pass --spec FILE"
        )
    for split in ("validation.jsonl", "test.jsonl"):
        if not (data / split).is_file():
            raise UsageError(f"{data} has no {split}")
    return preset
