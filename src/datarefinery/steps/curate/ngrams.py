"""An exact word n-gram index of benchmark texts, for decontamination.

Texts are compared as plain words: Unicode-normalised (NFKC), lower-cased, apostrophes dropped
(``it's`` and ``its`` are one word) and every other punctuation mark or symbol a word break.

Every word of the benchmark gets a random 64-bit value; a window of ``L`` words hashes to
``sum(value[k] * C[k])`` (mod 2^64) with fixed odd multipliers ``C``, so the hashes of all windows
of a text for ``L = 1, 2, ..., n`` come from ``n`` vectorised multiply-adds, each length extending
the one before. A long benchmark text contributes the hash of each of its n-word windows; a text of
fewer than ``n`` words contributes the hash of its whole word sequence, under its own length. A
record's window that contains a word the benchmark never uses cannot match and is not looked up.
Hash hits are confirmed on the words themselves, so a 64-bit collision never rejects a record.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

_APOSTROPHES = ("'", "\u2019", "`")
_WORD = re.compile(r"[^\W_]+")
_SEED = 20261203  # fixed: the same benchmark gives the same hashes on every run and worker


def plain_words(text: str) -> list[str]:
    """The words of ``text`` as decontamination compares them (see the module docstring)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    for mark in _APOSTROPHES:
        if mark in text:
            text = text.replace(mark, "")
    return _WORD.findall(text)


@dataclass(frozen=True)
class Match:
    """A record's words that occur in benchmark item ``item``: ``words`` of them."""

    item: int
    words: str
    whole_item: bool


class NgramIndex:
    """Benchmark texts (items), indexed once; ``find`` returns the first item a text shares an
    n-gram with (or, for an item shorter than ``n`` words, the item's whole word sequence).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._vocab: dict[str, int] = {}
        self._texts: list[str] = []  # each item's plain words, space-padded for containment
        self._pending: list[list[int]] = []  # each item's word ids, until ``freeze``
        rng = np.random.default_rng(_SEED)
        self._multipliers: NDArray[np.uint64] = rng.integers(
            0, 2**64, size=n, dtype=np.uint64
        ) | np.uint64(1)
        # Added to a window's hash per length, so windows of different lengths rarely share keys.
        self._salts = rng.integers(0, 2**64, size=n + 1, dtype=np.uint64)
        self._values: NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._lengths: set[int] = set()
        # Every indexed window's salted hash, sorted, and its item (the first item on ties).
        self._keys: NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._items: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._shift = np.uint64(63)
        self._filter: NDArray[np.uint8] = np.zeros(1, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, words: list[str]) -> int:
        """Index one item's plain words; returns its item number."""
        item = len(self._texts)
        self._texts.append(" " + " ".join(words) + " ")
        self._pending.append([self._vocab.setdefault(word, len(self._vocab)) for word in words])
        return item

    def freeze(self) -> None:
        """Build the lookup table; call once after the last ``add``."""
        rng = np.random.default_rng(_SEED + 1)
        self._values = rng.integers(0, 2**64, size=len(self._vocab), dtype=np.uint64)
        key_parts: list[NDArray[np.uint64]] = [self._keys]
        item_parts: list[NDArray[np.int64]] = [self._items]
        for item, ids in enumerate(self._pending):
            length = min(len(ids), self.n)
            if length == 0:
                continue
            self._lengths.add(length)
            values = self._values[np.asarray(ids, dtype=np.int64)]
            key_parts.append(self._windows(values, length) + self._salts[length])
            item_parts.append(np.full(len(ids) - length + 1, item, dtype=np.int64))
        self._pending = []
        keys, items = np.concatenate(key_parts), np.concatenate(item_parts)
        order = np.lexsort((items, keys))
        self._keys, self._items = keys[order], items[order]
        self._build_filter()

    def _build_filter(self) -> None:
        """A one-hash Bloom filter over the keys, about 32 bits per key: roughly one window in
        30 that is not in the benchmark still needs a search of the sorted keys.
        """
        bits = max(16, (32 * max(1, len(self._keys)) - 1).bit_length())
        self._shift = np.uint64(64 - bits)
        self._filter = np.zeros(1 << (bits - 3), dtype=np.uint8)
        slots = self._keys >> self._shift
        marks = np.left_shift(np.uint8(1), (slots & np.uint64(7)).astype(np.uint8))
        np.bitwise_or.at(self._filter, (slots >> np.uint64(3)).astype(np.int64), marks)

    def _windows(self, values: NDArray[np.uint64], length: int) -> NDArray[np.uint64]:
        """Hashes of every window of ``length`` values."""
        hashes: NDArray[np.uint64] = values * self._multipliers[0]
        for k in range(1, length):
            hashes = hashes[:-1] + values[k:] * self._multipliers[k]
        return hashes

    def find(self, text: str) -> Match | None:
        """The first benchmark item ``text`` shares words with: the shortest matching window
        length first, then the leftmost position.
        """
        words = plain_words(text)
        if not words or not self._lengths:
            return None
        keys, starts, lengths = self._candidates(words)
        if not len(keys):
            return None
        # The filter answers "certainly absent" for nearly every window in one gather; the
        # sorted keys are searched only for the few it lets through.
        slots = keys >> self._shift
        bytes_ = self._filter[(slots >> np.uint64(3)).astype(np.int64)]
        through = np.flatnonzero((bytes_ >> (slots & np.uint64(7)).astype(np.uint8)) & 1)
        if not len(through):
            return None
        wanted = keys[through]
        at = np.searchsorted(self._keys, wanted)
        hit = at < len(self._keys)
        hit[hit] = self._keys[at[hit]] == wanted[hit]
        for index, first in zip(through[hit].tolist(), at[hit].tolist(), strict=True):
            start, length = int(starts[index]), int(lengths[index])
            gram = " ".join(words[start : start + length])
            item = self._confirmed(gram, length, first)
            if item is not None:
                return Match(item, gram, whole_item=length < self.n)
        return None

    def _candidates(
        self, words: list[str]
    ) -> tuple[NDArray[np.uint64], NDArray[np.intp], NDArray[np.intp]]:
        """Salted hashes, start positions and lengths of the windows worth looking up: those of
        an indexed length made only of benchmark words, ordered by length, then position.
        """
        ids = np.array(list(map(self._vocab.get, words, repeat(-1, len(words)))), dtype=np.int64)
        unknown = ids < 0
        values = self._values[np.where(unknown, 0, ids)]
        # unknown_before[i]: unknown words among the first i; a window is clean when it adds none.
        unknown_before = np.concatenate(([0], np.cumsum(unknown)))
        any_unknown = bool(unknown_before[-1])
        key_parts: list[NDArray[np.uint64]] = []
        start_parts: list[NDArray[np.intp]] = []
        counts: list[int] = []
        hashes = values * self._multipliers[0]
        for length in range(1, min(self.n, len(words)) + 1):
            if length > 1:
                hashes = hashes[:-1] + values[length - 1 :] * self._multipliers[length - 1]
            if length not in self._lengths:
                continue
            if any_unknown:
                starts = np.flatnonzero(unknown_before[length:] == unknown_before[: len(hashes)])
            else:
                starts = np.arange(len(hashes))
            key_parts.append(hashes[starts] + self._salts[length])
            start_parts.append(starts)
            counts.append(len(starts))
        if not key_parts:
            empty = np.zeros(0, dtype=np.intp)
            return np.zeros(0, dtype=np.uint64), empty, empty
        present = [length for length in range(1, self.n + 1) if length in self._lengths]
        lengths = np.repeat(np.asarray(present[: len(counts)], dtype=np.intp), counts)
        return np.concatenate(key_parts), np.concatenate(start_parts), lengths

    def _confirmed(self, gram: str, length: int, first: int) -> int | None:
        """The first item under the key at ``first`` that really holds ``gram`` as an indexed
        window of ``length`` words (a hash collision confirms nothing).
        """
        key = self._keys[first]
        padded = f" {gram} "
        position = first
        while position < len(self._keys) and self._keys[position] == key:
            item = int(self._items[position])
            text = self._texts[item]
            if min(text.count(" ") - 1, self.n) == length and padded in text:
                return item
            position += 1
        return None
