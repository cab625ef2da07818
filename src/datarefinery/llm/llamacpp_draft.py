"""Prompt-lookup drafting for the batched llama.cpp decoder (``llamacpp_decoder``).

A rewriting step's reply copies long runs of its prompt. When the last few tokens a sequence wrote
also occur in its prompt, the tokens that followed them there are a cheap guess at what comes next:
the decoder feeds that guess (the draft) after the sequence's next token in the same batch, with
logits for every position, and keeps the drafted tokens the model itself would have chosen.

Verification (``verify``) draws the token of each position with the sequence's own sampler, exactly
as decoding without drafts would, and goes on only while the drawn token equals the drafted one.
For a draft that is one fixed token ``t`` (a point mass) this is the speculative-sampling rule:
``t`` is kept with probability ``p(t)``, and when it is not, the token emitted is a draw from ``p``
given that it is not ``t``, i.e. ``p`` without ``t``, renormalised. Drawing first and comparing
consumes the sampler's random numbers exactly as plain decoding does, so a request gives the same
reply with and without drafts (greedy or sampled), given the same logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Match lengths tried, longest first: a 3-token match is rarely a coincidence; a 1-token match
# (a common word) proposes junk more often than not.
NGRAMS = (3, 2)


class PromptLookup:
    """Proposes the continuation of the latest tokens from where they last occur in the prompt."""

    def __init__(self, prompt: Sequence[int]) -> None:
        self.prompt = list(prompt)
        # n-gram -> index just after its last occurrence in the prompt (later occurrences win:
        # a chat prompt puts the text to rewrite last, after instructions and examples).
        self._after: dict[tuple[int, ...], int] = {}
        for n in NGRAMS:
            for end in range(n, len(self.prompt)):
                self._after[tuple(self.prompt[end - n : end])] = end

    def propose(self, generated: Sequence[int], limit: int) -> list[int]:
        """Up to ``limit`` tokens that followed the latest tokens (the prompt's end, then what was
        generated) where they last occur in the prompt.
        """
        if limit < 1:
            return []
        tail = (self.prompt[-NGRAMS[0] :] + list(generated))[-NGRAMS[0] :]
        for n in NGRAMS:
            if len(tail) < n:
                continue
            start = self._after.get(tuple(tail[-n:]))
            if start is not None:
                return self.prompt[start : start + limit]
        return []


class DraftLength:
    """How many tokens to draft next for one request, from that request's own acceptance only
    (so a reply never depends on what else is in the batch).

    Full acceptance grows the draft; a partial one shrinks it to what was kept plus one; a miss
    shrinks it to one and then pauses drafting for a number of steps that doubles with each
    consecutive miss (a free-text request that never copies its prompt costs almost nothing).
    """

    def __init__(self, maximum: int, start: int = 4) -> None:
        self.maximum = maximum
        self.length = min(start, maximum)
        self._misses = 0
        self._pause = 0

    def next(self) -> int:
        if self.maximum < 1:
            return 0
        if self._pause > 0:
            self._pause -= 1
            return 0
        return self.length

    def update(self, drafted: int, accepted: int) -> None:
        if drafted == 0:
            return
        if accepted == drafted:
            self._misses = 0
            self.length = min(self.maximum, self.length + 2)
        elif accepted > 0:
            self._misses = 0
            self.length = max(1, accepted + 1)
        else:
            self._misses += 1
            self.length = 1
            self._pause = min(2 ** (self._misses - 1), 32) if self._misses > 1 else 0


def verify(draft: Sequence[int], draw: Callable[[int], int | None]) -> int:
    """Draw position after position until a drawn token differs from the drafted one; returns
    how many drafted tokens were kept.

    ``draw(i)`` samples the token after position ``i`` of the fed run (the sequence's pending token
    is position 0, drafted token ``i`` is position ``i``), records it, and returns it, or ``None``
    when the sequence has ended (end of generation, stop string, length). When every drafted token
    is kept, the last position still gives one more token: ``len(draft) + 1`` tokens in one step.
    """
    for i, drafted in enumerate(draft):
        token = draw(i)
        if token is None or token != drafted:
            return i
    draw(len(draft))
    return len(draft)
