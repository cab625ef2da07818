"""A tiny hand-written extractive QA folder (SQuAD-style rows) and a scripted QA generator, for
the QA steps, loop and experiment tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datarefinery.llm.base import Request

CONTEXTS = [
    "Eldon Square opened in 1976 in Newcastle. Its architect was Gordon Graham, and the "
    "centre was rebuilt in 2010 around a new bus station.",
    "The Apollo 8 crew orbited the Moon in December 1968. Frank Borman commanded the mission, "
    "and Jim Lovell flew as command module pilot.",
    "Bainbridge's store opened in 1838 and is often called the first department store. Its "
    "founder Emerson Bainbridge sold goods by department.",
]
QUESTIONS = [
    ("When did Eldon Square open?", "1976"),
    ("Who designed Eldon Square?", "Gordon Graham"),
    ("When did Apollo 8 orbit the Moon?", "December 1968"),
    ("Who commanded Apollo 8?", "Frank Borman"),
    ("When did Bainbridge's open?", "1838"),
    ("Who founded Bainbridge's?", "Emerson Bainbridge"),
]


def qa_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (question, answer) in enumerate(QUESTIONS):
        context = CONTEXTS[i // 2]
        rows.append(
            {
                "id": f"q{i}",
                "context": context,
                "question": question,
                "answers": {"text": [answer], "answer_start": [context.index(answer)]},
            }
        )
    return rows


def qa_folder(root: Path) -> Path:
    """``root/adversarial_qa`` with the same six questions as validation and test."""
    folder = root / "adversarial_qa"
    folder.mkdir(parents=True)
    for split in ("validation", "test"):
        lines = "".join(json.dumps(row) + "\n" for row in qa_rows())
        (folder / f"{split}.jsonl").write_text(lines)
    return folder


def _context(prompt: str) -> str:
    for context in CONTEXTS:
        if context in prompt:
            return context
    return CONTEXTS[0]


def qa_script(request: Request) -> str:
    """A generator that asks about a year (a span of the context) on odd seeds, and on even
    seeds answers with a paraphrase that is not a span ("the year ..."), which ``qa_span`` rejects.
    """
    prompt = request.messages[-1].content
    context = _context(prompt)
    year = re.findall(r"\b1\d{3}\b", context)[0]
    seed = request.seed or 0
    answer = year if seed % 2 else f"the year {year}"
    return json.dumps({"question": f"Which year is named, variant {seed}?", "answer": answer})
