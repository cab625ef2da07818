import random

import numpy as np

from datarefinery.steps.curate.ngrams import NgramIndex, plain_words

VOCAB = [f"w{i}" for i in range(400)]


def index_of(*texts: str, n: int = 13) -> NgramIndex:
    index = NgramIndex(n)
    for text in texts:
        index.add(plain_words(text))
    index.freeze()
    return index


def test_plain_words_drop_case_punctuation_apostrophes_and_spacing() -> None:
    assert plain_words("It's  a WELL-known\tfact: don\u2019t (panic)!") == [
        "its",
        "a",
        "well",
        "known",
        "fact",
        "dont",
        "panic",
    ]
    assert plain_words("\uff21\uff22\uff23 snake_case 4:30") == ["abc", "snake", "case", "4", "30"]
    assert plain_words(" ... ") == []


def test_a_long_item_matches_on_any_n_words_in_a_row_and_never_on_fewer() -> None:
    rng = random.Random(5)
    item = [rng.choice(VOCAB) for _ in range(60)]
    index = NgramIndex(13)
    index.add(item)
    index.freeze()
    for start in range(0, 48):
        shared = item[start : start + 13]
        found = index.find("x1 x2 " + " ".join(shared) + " x3")
        assert found is not None and found.words == " ".join(shared) and not found.whole_item
        assert index.find("x1 " + " ".join(shared[:12]) + " x3") is None


def test_a_short_item_matches_only_whole() -> None:
    index = index_of("What is the capital of France?")
    found = index.find("Quiz time. WHAT is the capital of france, again?")
    assert found is not None and found.whole_item and found.words == "what is the capital of france"
    assert index.find("what is the capital of Spain") is None
    assert index.find("the capital of France is Paris") is None


def test_the_shortest_length_then_the_leftmost_window_is_reported() -> None:
    index = index_of("alpha beta gamma", "one two three four five six seven eight", n=5)
    found = index.find("one two three four five six seven eight and alpha beta gamma")
    assert found is not None and found.item == 0  # the 3-word item, though it comes later
    found = index.find("zero one two three four five six seven")
    assert found is not None and found.words == "one two three four five"


def test_planted_ngrams_are_all_found_and_text_is_found_exactly_when_it_holds_a_window() -> None:
    rng = random.Random(11)
    small = VOCAB[:12]  # few words, so random text holds some short items by chance
    items = [[rng.choice(small) for _ in range(rng.randint(3, 40))] for _ in range(300)]
    index = NgramIndex(8)
    for words in items:
        index.add(words)
    index.freeze()
    for trial in range(300):
        words = items[rng.randrange(len(items))]
        length = min(len(words), 8)
        start = rng.randrange(len(words) - length + 1)
        planted = words[start : start + length]
        noise = [f"z{rng.randrange(50)}" for _ in range(rng.randint(0, 30))]
        at = rng.randint(0, len(noise))
        text = " ".join(noise[:at] + planted + noise[at:])
        assert index.find(text) is not None, (trial, text)
    windows = {
        tuple(w[i : i + min(len(w), 8)]) for w in items for i in range(len(w) - min(len(w), 8) + 1)
    }
    found = 0
    for _ in range(300):  # the benchmark's own words in new orders: found exactly when present
        words = [rng.choice(small) for _ in range(rng.randint(1, 20))]
        present = any(
            tuple(words[i : i + length]) in windows
            for length in {min(len(w), 8) for w in items}
            for i in range(len(words) - length + 1)
        )
        found += present
        assert (index.find(" ".join(words)) is not None) == present
    assert 0 < found < 300


def test_hash_collisions_confirm_nothing() -> None:
    index = NgramIndex(4)
    # Every window of every length now hashes to the same value per length.
    index._multipliers = np.zeros(4, dtype=np.uint64)
    index.add(["a", "b", "c", "d", "e"])
    index.add(["x", "y", "z"])
    index.freeze()
    assert index.find("a b c e d x y q") is None
    found = index.find("q b c d e")
    assert found is not None and found.item == 0 and found.words == "b c d e"
    found = index.find("x y z")
    assert found is not None and found.item == 1


def test_ties_name_the_first_item() -> None:
    index = index_of("one two three four five", "zero one two three four five", n=4)
    found = index.find("one two three four")
    assert found is not None and found.item == 0


def test_an_empty_index_finds_nothing() -> None:
    index = NgramIndex(13)
    index.freeze()
    assert index.find("anything at all") is None
