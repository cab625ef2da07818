import pytest

from datarefinery.config import spec_from_dict
from datarefinery.errors import ConfigError
from datarefinery.pipeline import Pipeline
from tests.support.specs import sentiment_spec


def build(spec: dict) -> Pipeline:  # type: ignore[type-arg]
    return Pipeline.from_spec(spec_from_dict(spec))


def test_step_options_are_validated_with_their_path() -> None:
    spec = sentiment_spec()
    spec["steps"] = [{"zero_shot": {"count_per_label": "many"}}]
    with pytest.raises(ConfigError, match=r"steps\[0\]\.zero_shot\.count_per_label"):
        build(spec)


def test_unknown_step_lists_the_known_ones() -> None:
    spec = sentiment_spec()
    spec["steps"] = [{"zero_shots": {}}]
    with pytest.raises(ConfigError, match=r"unknown step 'zero_shots'.*zero_shot"):
        build(spec)


def test_source_step_must_be_first() -> None:
    spec = sentiment_spec()
    spec["input"] = "data.jsonl"
    spec["steps"] = [{"validate": {}}, {"zero_shot": {}}]
    with pytest.raises(ConfigError, match="must be the first step"):
        build(spec)


def test_processing_step_needs_input() -> None:
    spec = sentiment_spec()
    spec["steps"] = [{"validate": {}}]
    with pytest.raises(ConfigError, match="add 'input: PATH'"):
        build(spec)


def test_fields_read_must_be_available() -> None:
    spec = sentiment_spec()
    spec["input"] = "data.jsonl"
    spec["steps"] = [{"validate": {"fields": ["text", "rating"]}}]
    pipeline = build(spec)  # the first step's reads become required input fields
    assert pipeline.input_required == {"text", "rating"}
    spec["steps"] = [{"validate": {}}, {"validate": {"fields": ["rating"]}}]
    with pytest.raises(ConfigError, match=r"reads fields \['rating'\]"):
        build(spec)


def test_repeated_steps_get_distinct_names() -> None:
    spec = sentiment_spec()
    spec["input"] = "data.jsonl"
    spec["steps"] = [{"validate": {}}, {"validate": {}}]
    assert build(spec).names == ["validate", "validate_2"]


def _settings(options: dict[str, object]) -> dict[str, str]:
    spec = sentiment_spec()
    spec["steps"] = [{"zero_shot": options}, {"dedup": {}}]
    return Pipeline.from_spec(spec_from_dict(spec)).settings()


def test_settings_cover_defaults_not_how_the_spec_spells_them() -> None:
    plain = _settings({"count_per_label": 2})
    assert set(plain) == {"zero_shot", "dedup"}
    # per_call's default (1) written out is the same setting; another value is not
    assert _settings({"count_per_label": 2, "per_call": 1}) == plain
    other = _settings({"count_per_label": 2, "per_call": 3})
    assert other["zero_shot"] != plain["zero_shot"] and other["dedup"] == plain["dedup"]
