"""Prompt-lookup drafting: what is proposed, how the draft length adapts, and that checking a draft
by drawing and comparing emits tokens with the model's own distribution.
"""

from collections import Counter

import numpy as np

from datarefinery.llm.llamacpp_draft import DraftLength, PromptLookup, verify


def test_the_continuation_of_the_latest_tokens_in_the_prompt_is_proposed() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 7, 9, 9])
    assert lookup.propose([2, 3, 4], 3) == [5, 6, 7]
    assert lookup.propose([3, 4], 10) == [5, 6, 7, 9, 9]  # up to the prompt's end
    assert lookup.propose([8, 3, 4], 2) == [5, 6]  # a two-token match when three do not
    assert lookup.propose([4, 8], 3) == []  # no match: no draft
    assert lookup.propose([2, 3, 4], 0) == []


def test_a_later_occurrence_in_the_prompt_wins() -> None:
    # Instructions and examples come first, the text to rewrite last.
    assert PromptLookup([5, 6, 1, 0, 5, 6, 2, 0]).propose([5, 6], 1) == [2]


def test_the_draft_length_follows_the_requests_own_acceptance() -> None:
    length = DraftLength(8, start=4)
    assert length.next() == 4
    length.update(4, 4)
    assert length.next() == 6
    length.update(6, 6)
    length.update(8, 8)
    assert length.next() == 8  # capped
    length.update(8, 2)
    assert length.next() == 3  # what was kept, plus one
    length.update(3, 0)
    assert length.next() == 1
    length.update(1, 0)  # a second miss in a row: pause
    assert [length.next() for _ in range(3)] == [0, 0, 1]
    assert DraftLength(0).next() == 0


def test_drafts_are_kept_while_the_drawn_tokens_agree() -> None:
    drawn: list[int] = []

    def draw_from(tokens: list[int]):  # type: ignore[no-untyped-def]
        def draw(i: int) -> int:
            drawn.append(tokens[i])
            return tokens[i]

        return draw

    assert verify([5, 6, 7], draw_from([5, 6, 7, 8])) == 3 and drawn == [5, 6, 7, 8]
    drawn.clear()
    assert verify([5, 6, 7], draw_from([5, 9, 7, 8])) == 1 and drawn == [5, 9]
    drawn.clear()
    assert verify([], draw_from([4])) == 0 and drawn == [4]
    # The sequence ended on the first drawn token: nothing more is drawn.
    assert verify([5, 6], lambda i: None) == 0


def test_the_emitted_tokens_follow_the_target_distribution() -> None:
    # A fixed distribution p and a fixed draft token t: speculative sampling with a point-mass
    # draft keeps t with probability p(t), and otherwise emits a draw from p without t,
    # renormalised. The first emitted token must therefore be distributed as p itself.
    p = np.array([0.5, 0.3, 0.15, 0.05])
    draft = 1
    rng = np.random.default_rng(1234)
    draws = 20_000
    first: Counter[int] = Counter()
    kept = 0
    rejected_as: Counter[int] = Counter()
    emitted: list[int] = []

    def draw(i: int) -> int:
        token = int(rng.choice(len(p), p=p))
        emitted.append(token)
        return token

    for _ in range(draws):
        emitted.clear()
        accepted = verify([draft], draw)
        first[emitted[0]] += 1
        kept += accepted
        if not accepted:
            rejected_as[emitted[0]] += 1
    observed = np.array([first[k] for k in range(len(p))])
    chi2 = float((((observed - draws * p) ** 2) / (draws * p)).sum())
    assert chi2 < 16.3  # 3 degrees of freedom, p < 0.001
    assert abs(kept / draws - p[draft]) < 0.015
    residual = np.where(np.arange(len(p)) == draft, 0.0, p) / (1 - p[draft])
    rejections = draws - kept
    observed_residual = np.array([rejected_as[k] for k in range(len(p))])
    expected = rejections * residual
    mask = expected > 0
    chi2_residual = float((((observed_residual - expected)[mask] ** 2) / expected[mask]).sum())
    assert observed_residual[draft] == 0 and chi2_residual < 13.8  # 2 d.o.f., p < 0.001
