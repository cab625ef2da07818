"""Text helpers any floor may use: normalisation, tokenisation, ROUGE / LCS, word similarity and
matching a known value inside a text. Standard library only.

Some helpers look alike but differ, and each keeps the behaviour its callers were built and
measured with; the names say what they do:

- ``normalize`` (NFKC, case-folded, runs of whitespace as one space) serves equality and
  containment checks of generated text; ``casefold_spaces`` is the same without NFKC, so
  compatibility forms (full-width letters, superscripts) stay apart (verbatim overlap, known-value
  leaks, surrogate lookups).
- ``words_and_marks`` (words and single punctuation marks, case kept) measures edits;
  ``lower_words_and_marks`` is the same on lower-cased text (distinct-n, ROUGE-2, overlap
  features); ``rouge_tokens`` is the tokenisation of Google's ``rouge_score`` (lower-cased runs of
  ``[a-z0-9]``) that Self-Instruct's ROUGE-L filter used.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

# Words (runs of \w) and every other non-space character on its own.
WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")
WORD = re.compile(r"\w+")
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
_SPACE = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"\D")

# English function words, for "does this add / share any content word" checks.
_STOPWORDS_TEXT = """
a an the of in on at to for from by with and or but is are was were be been it its this that these
those as what which who whom when where why how do does did
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


# -- normalisation ---------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Case-, whitespace- and Unicode-normalized text, for equality and containment checks."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def casefold_spaces(text: str) -> str:
    """Case-folded text with each run of whitespace as one space, trimmed (no Unicode
    normalization, unlike ``normalize``).
    """
    return _SPACE.sub(" ", text.casefold()).strip()


def normalized_key(fields: Mapping[str, Any], names: Iterable[str]) -> str:
    """Case-, whitespace- and Unicode-normalized fingerprint of the given fields."""
    parts = [normalize(str(fields.get(name, ""))) for name in names]
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


# -- tokenisation ----------------------------------------------------------------------------


def words_and_marks(text: str) -> list[str]:
    """Words and punctuation marks, case kept."""
    return WORD_OR_MARK.findall(text)


def lower_words_and_marks(text: str) -> list[str]:
    """Words and punctuation marks of the lower-cased text."""
    return WORD_OR_MARK.findall(text.lower())


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased runs of ``[a-z0-9]``; everything else separates (``rouge_score``'s tokens)."""
    return _ROUGE_TOKEN.findall(text.lower())


# -- ROUGE and LCS ---------------------------------------------------------------------------


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
    """ROUGE-L F1 of two token sequences (0.0 when either is empty)."""
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


def _bigrams(text: str) -> Counter[tuple[str, str]]:
    return Counter(pairwise(lower_words_and_marks(text)))


def rouge2_f1(a: str, b: str) -> float:
    """ROUGE-2 F1 of two texts: clipped bigram overlap of ``lower_words_and_marks``, symmetric
    (0.0 when either has none).
    """
    grams_a, grams_b = _bigrams(a), _bigrams(b)
    total_a, total_b = sum(grams_a.values()), sum(grams_b.values())
    if not total_a or not total_b:
        return 0.0
    overlap = sum((grams_a & grams_b).values())
    precision, recall = overlap / total_a, overlap / total_b
    return 2 * precision * recall / (precision + recall) if overlap else 0.0


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


# -- word similarity -------------------------------------------------------------------------


def token_f1(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """Bag-of-tokens F1 (1.0 for two empty sequences)."""
    if not reference and not candidate:
        return 1.0
    common = sum((Counter(reference) & Counter(candidate)).values())
    if common == 0:
        return 0.0
    precision = common / len(candidate)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall)


# -- value matching --------------------------------------------------------------------------


def value_pattern(value: str) -> re.Pattern[str]:
    """A pattern for ``value`` as words: any case, any whitespace between its parts, and not
    inside a longer word where the value starts or ends with a letter or digit.
    """
    escaped = r"\s+".join(re.escape(part) for part in value.split())
    left = r"(?<!\w)" if value[:1].isalnum() else ""
    right = r"(?!\w)" if value[-1:].isalnum() else ""
    return re.compile(left + escaped + right, re.IGNORECASE)


def _digits(text: str) -> str:
    return _NON_DIGIT.sub("", text)


def contains_value(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text``: as words (any case, any spacing), or, for numbers of
    seven digits or more (cards, phones, IBANs), as the same digits however they are grouped.
    """
    value = value.strip()
    if not value:
        return False
    if value_pattern(value).search(text):
        return True
    digits = _digits(value)
    return (
        len(digits) >= 7
        and len(digits) >= 0.6 * len(value.replace(" ", ""))
        and (digits in _digits(text))
    )


def mask_values(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of each value (as ``value_pattern`` finds it, longest value
    first) replaced by a space.
    """
    for value in sorted({v for v in values if v.strip()}, key=len, reverse=True):
        text = value_pattern(value).sub(" ", text)
    return text


def string_leaves(value: object) -> Iterator[str]:
    """Every string inside ``value`` (itself, or inside nested lists and mappings, such as a
    chat's messages or a spec section), in order.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from string_leaves(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from string_leaves(inner)
