"""ROUGE-L between short texts, for near-duplicate filters (Self-Instruct's "ROUGE-L > 0.7 with
any instruction in the pool", rationale and evolution checks).

ROUGE-L is the F1 of precision and recall of the longest common subsequence of tokens (Lin 2004),
with the tokenization of Google's ``rouge_score`` package that Self-Instruct used: lower-cased runs
of ``[a-z0-9]``, everything else a separator, no stemming.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+")
# English function words, for "does this add / share any content word" checks.
_STOPWORDS_TEXT = """
a an the of in on at to for from by with and or but is are was were be been it its this that these
those as what which who whom when where why how do does did
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def rouge_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row of memory)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_tokens(candidate: Sequence[str], reference: Sequence[str]) -> float:
    if not candidate or not reference:
        return 0.0
    lcs = lcs_length(candidate, reference)
    if lcs == 0:
        return 0.0
    precision = lcs / len(candidate)
    recall = lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of two texts (symmetric; 0.0 when either has no tokens)."""
    return rouge_l_tokens(rouge_tokens(candidate), rouge_tokens(reference))


class SimilarityPool:
    """Texts seen so far, to ask "how close is the closest one?" (tokenized once each)."""

    def __init__(self, texts: Sequence[str] = ()) -> None:
        self.texts: list[str] = []
        self._tokens: list[list[str]] = []
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> None:
        self.texts.append(text)
        self._tokens.append(rouge_tokens(text))

    def closest(self, text: str) -> tuple[float, str | None]:
        """The highest ROUGE-L of ``text`` with a pooled text, and that text."""
        tokens = rouge_tokens(text)
        best, best_text = 0.0, None
        for other, other_tokens in zip(self.texts, self._tokens, strict=True):
            # LCS ≤ the shorter length and F1 = 2·LCS / (m + n): skip pairs that cannot win.
            shorter = min(len(tokens), len(other_tokens))
            bound = 2 * shorter / max(1, len(tokens) + len(other_tokens))
            if bound <= best:
                continue
            score = rouge_l_tokens(tokens, other_tokens)
            if score > best:
                best, best_text = score, other
        return best, best_text
