"""Long texts in pieces a model can rewrite: paragraphs first, then sentences, then words.

A chunk keeps the whitespace around it out of the model's hands (``lead`` and ``tail``), so
joining the rewrites of all chunks gives back the text's layout exactly; offsets are those of the
original text. A cut never falls inside a protected span (a PII value): it moves to the span's
start, or past its end when the span starts the chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Where a new chunk may start, best first: after a blank line, after a sentence, after a space.
_CUTS = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*\s+"),
    re.compile(r"\s+"),
)
_LEAD = re.compile(r"^\s*")
_TAIL = re.compile(r"\s*$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text[start:end]`` is the body the model sees; ``lead`` and ``tail`` the whitespace before
    and after it, kept verbatim.
    """

    start: int
    end: int
    lead: str
    body: str
    tail: str


def split_chunks(
    text: str, max_chars: int, protected: Sequence[tuple[int, int]] = ()
) -> list[Chunk]:
    """``text`` in chunks of at most ``max_chars`` (longer only where a protected span or a
    word longer than that leaves no other cut); one chunk when it fits.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[tuple[int, int]] = []
    pos = 0
    while len(text) - pos > max_chars:
        cut = _safe(_best_cut(text, pos, max_chars), pos, protected)
        if cut >= len(text):
            break
        pieces.append((pos, cut))
        pos = cut
    pieces.append((pos, len(text)))
    return [_chunk(text, start, end) for start, end in pieces]


def join_chunks(chunks: Sequence[Chunk], bodies: Sequence[str]) -> str:
    """The text again, each chunk's body replaced by its rewrite."""
    if len(chunks) != len(bodies):
        raise ValueError(f"{len(chunks)} chunks but {len(bodies)} rewrites")
    return "".join(c.lead + body + c.tail for c, body in zip(chunks, bodies, strict=True))


def _best_cut(text: str, pos: int, max_chars: int) -> int:
    limit = pos + max_chars
    # A cut in the first quarter would leave a sliver of a chunk: the next kind of cut is better.
    floor = pos + max(1, max_chars // 4)
    for pattern in _CUTS:
        ends = [m.end() for m in pattern.finditer(text, pos, limit + 1)]
        ends = [end for end in ends if floor <= end <= limit]
        if ends:
            return ends[-1]
    return limit


def _safe(cut: int, pos: int, protected: Sequence[tuple[int, int]]) -> int:
    """``cut`` moved out of every protected span it falls inside: back to the span's start when
    that leaves something in this chunk, else forward past its end.
    """
    back = cut
    while inside := [start for start, end in protected if start < back < end]:
        back = min(inside)
    if back > pos:
        return back
    forward = cut
    while inside := [end for start, end in protected if start < forward < end]:
        forward = max(inside)
    return forward


def _chunk(text: str, start: int, end: int) -> Chunk:
    piece = text[start:end]
    lead = _LEAD.match(piece)
    lead_len = lead.end() if lead else 0
    tail = _TAIL.search(piece, lead_len)
    tail_start = tail.start() if tail else len(piece)
    return Chunk(
        start=start + lead_len,
        end=start + tail_start,
        lead=piece[:lead_len],
        body=piece[lead_len:tail_start],
        tail=piece[tail_start:],
    )
