import random
import sys

import pytest

from datarefinery.text import (
    SimilarityPool,
    casefold_spaces,
    contains_value,
    lcs_length,
    lower_words_and_marks,
    mask_values,
    normalize,
    normalized_key,
    rouge_l,
    rouge_tokens,
    string_leaves,
    value_pattern,
    words_and_marks,
)


def test_tokenize_splits_words_and_punctuation() -> None:
    assert lower_words_and_marks("Great film, truly!") == ["great", "film", ",", "truly", "!"]


def test_words_and_marks_keep_case() -> None:
    assert words_and_marks("Great film, truly!") == ["Great", "film", ",", "truly", "!"]


def test_the_two_normalizers_differ_only_in_unicode_normalization() -> None:
    assert normalize("  Caf\u00e9\tSTRASSE \n") == casefold_spaces("  Caf\u00e9\tSTRASSE \n")
    assert casefold_spaces("  Stra\u00dfe \t x ") == "strasse x"
    # NFKC folds compatibility forms (full-width letters, superscripts); casefold_spaces keeps them.
    assert normalize("\uff21 x\u00b2") == "a x2"
    assert casefold_spaces("\uff21 x\u00b2") == "\uff41 x\u00b2"


def test_casefold_spaces_equals_split_join_casefold_on_every_character() -> None:
    # The surrogate planner's former key, " ".join(v.split()).casefold(), now uses this helper.
    text = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    for start in range(0, len(text), 4096):
        chunk = "A " + text[start : start + 4096] + " z"
        assert casefold_spaces(chunk) == " ".join(chunk.split()).casefold()


def test_normalized_key_ignores_case_spacing_and_width() -> None:
    key = normalized_key({"text": "Hello  World", "label": "pos"}, ["text", "label"])
    assert key == normalized_key({"text": "hello world", "label": "POS"}, ["text", "label"])
    assert key != normalized_key({"text": "hello world", "label": "neg"}, ["text", "label"])
    assert normalized_key({}, ["text"]) == normalized_key({"text": ""}, ["text"])


def test_contains_value_ignores_case_spacing_and_number_grouping() -> None:
    assert contains_value("call ANNA  Kowalski now", "Anna Kowalski")
    assert not contains_value("Annabel came", "Anna")
    assert contains_value("card 4111111111111111", "4111 1111 1111 1111")
    assert not contains_value("card 4111 1111 1111 1112", "4111 1111 1111 1111")
    assert not contains_value("anything", "  ")


def test_value_pattern_and_masking() -> None:
    assert value_pattern("Anna").search("hi anna!") is not None
    assert value_pattern("Anna").search("Annabel") is None
    # A value ending in punctuation has no word boundary to respect on that side.
    assert value_pattern("Inc.").search("Acme Inc.x") is not None
    assert mask_values("Anna Kowalski and Anna", ["Anna", "Anna Kowalski", " "]) == "  and  "


def test_tokens_are_lowercase_alphanumeric_runs() -> None:
    assert rouge_tokens("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Lin (2004), section 3.1: reference S1, candidates S2 and S3.
        ("police killed the gunman", "police kill the gunman", 3 / 4),
        ("police killed the gunman", "the gunman kill police", 2 / 4),
        # LCS "the cat on the mat" = 5 of 6 tokens each: P = R = F = 5/6.
        ("the cat sat on the mat", "the cat lay on the mat", 5 / 6),
        # LCS 2, lengths 4 and 2: P = 1, R = 1/2, F = 2/3.
        ("a b c d", "a c", 2 / 3),
        ("Hello, World!", "hello world", 1.0),
        ("one two three", "four five six", 0.0),
        ("", "anything at all", 0.0),
        ("!!!", "???", 0.0),
    ],
)
def test_rouge_l_on_hand_checked_pairs(a: str, b: str, expected: float) -> None:
    assert rouge_l(a, b) == pytest.approx(expected)
    assert rouge_l(b, a) == pytest.approx(expected)


def test_lcs_length() -> None:
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (CLRS 15.4)
    assert lcs_length([], ["a"]) == 0


def test_pool_closest_matches_brute_force() -> None:
    rng = random.Random(0)
    words = [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "under",
        "mat",
        "log",
        "big",
        "small",
        "red",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(2, 9))) for _ in range(60)]
    pool = SimilarityPool(texts[:50])
    for query in texts[50:]:
        best = max(rouge_l(query, t) for t in texts[:50])
        score, closest = pool.closest(query)
        assert score == pytest.approx(best)
        assert closest is not None and rouge_l(query, closest) == pytest.approx(best)
    assert SimilarityPool().closest("anything") == (0.0, None)


def test_string_leaves_walk_chats_and_spec_sections() -> None:
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert list(string_leaves(chat)) == ["user", "hi", "assistant", "hello"]
    assert list(string_leaves({"a": ("x", {"b": "y"}), "n": 3})) == ["x", "y"]
    assert list(string_leaves(3)) == []
