"""Which running sequence a new one copies its prompt prefix from."""

from datarefinery.llm.llamacpp_prefix import MIN_SHARED_TOKENS, best_source, common_length

SYSTEM = list(range(100, 100 + 2 * MIN_SHARED_TOKENS))


def test_the_longest_shared_prefix_wins() -> None:
    prompt = [*SYSTEM, 1, 2, 3, 4]
    candidates = [("a", [*SYSTEM, 9]), ("b", [*SYSTEM, 1, 2, 9]), ("c", [7, *SYSTEM])]
    assert best_source(prompt, candidates) == ("b", len(SYSTEM) + 2)


def test_a_short_common_prefix_is_not_worth_a_copy() -> None:
    short = SYSTEM[: MIN_SHARED_TOKENS - 1]
    assert best_source([*short, 1, 2], [("a", [*short, 3])]) is None
    assert best_source(SYSTEM, []) is None


def test_the_last_prompt_token_is_always_evaluated() -> None:
    # Its logits are where the new sequence's reply starts.
    assert best_source(SYSTEM, [("same", SYSTEM)]) == ("same", len(SYSTEM) - 1)
    assert common_length([1, 2, 3], [1, 2]) == 2


def test_the_sources_last_prompt_token_is_never_copied() -> None:
    # The tiled scheme evaluates a prompt's last token like a generated one (another kernel), so a
    # prompt that continues past a shorter source's whole prompt copies all but that token.
    assert best_source([*SYSTEM, 5, 6], [("shorter", SYSTEM)]) == ("shorter", len(SYSTEM) - 1)
