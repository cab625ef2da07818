import pytest

from datarefinery.steps.curate.filter import Filter, FilterConfig, repetition_ratio
from tests.steps.curate.helpers import SENTIMENT, records, rejected, run_step


def reasons(config: dict, *texts: str) -> list[str]:  # type: ignore[type-arg]
    outputs = run_step(Filter(FilterConfig.model_validate(config)), records(*texts))
    return [o.reason if hasattr(o, "reason") else "kept" for o in outputs]


def test_length_rules_name_the_rule_and_values() -> None:
    assert reasons({"min_words": 3, "max_chars": 30}, "too few", "just three words", "x" * 31) == [
        "too_short",
        "kept",
        "too_long",
    ]
    (out,) = rejected(run_step(Filter(FilterConfig(min_chars=10)), records("short")))
    assert out.detail == "text: 5 characters < min_chars 10"


def test_regex_labels_and_required_fields() -> None:
    config = {"must_match": [r"\bfilm\b"], "must_not_match": [r"(?i)as an ai"]}
    assert reasons(config, "A fine film.", "A fine movie.", "As an AI, this film...") == [
        "kept",
        "regex_must_match",
        "regex_must_not_match",
    ]
    batch = records("good film", "bad film")
    batch[1].fields["label"] = "negative"
    outputs = run_step(Filter(FilterConfig(labels=["positive"])), batch)
    assert [getattr(o, "reason", "kept") for o in outputs] == ["kept", "label_not_allowed"]
    batch[0].fields["text"] = "  "
    out = run_step(Filter(FilterConfig(required=["text"])), batch[:1])
    assert getattr(out[0], "reason", None) == "missing_field"


def test_repetition_ratio_hand_checked() -> None:
    # trigrams of "a b c a b c": abc bca cab abc -> 1 repeat of 4
    assert repetition_ratio("a b c a b c") == pytest.approx(0.25)
    assert repetition_ratio("no repeats here at all") == 0.0
    assert reasons({"max_repetition": 0.2}, "a b c a b c", "a b c d e f") == ["repetition", "kept"]


def test_language_rule_uses_the_offline_detector() -> None:
    texts = (
        "This movie was a wonderful surprise and the acting was superb.",
        "Ce film était une merveilleuse surprise et les acteurs étaient superbes.",
    )
    assert reasons({"language": ["en"]}, *texts) == ["kept", "language"]


def test_unknown_label_in_options_is_a_config_error() -> None:
    with pytest.raises(Exception, match="not among the task's labels"):
        run_step(Filter(FilterConfig(labels=["meh"])), records("x"), task=SENTIMENT)
