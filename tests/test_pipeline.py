from typing import Any, ClassVar

import pytest

from datarefinery.config import spec_from_dict
from datarefinery.errors import ConfigError
from datarefinery.pipeline import Pipeline
from datarefinery.steps.base import StepConfig
from datarefinery.steps.curate.dedup import Dedup
from datarefinery.steps.registry import STEPS, step_class
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


class _Released(StepConfig):
    method: str = "exact"


class _Upgraded(StepConfig):
    # a step as released, and the same step after an upgrade added ``window``
    method: str = "exact"
    window: int = 0
    added_options: ClassVar[dict[str, Any]] = {"window": 0}


def _digest(config: StepConfig) -> str:
    return Pipeline([Dedup(config)], ["dedup"], set()).settings()["dedup"]  # type: ignore[arg-type]


def test_an_added_option_at_its_earlier_behaviour_keeps_the_settings_digest() -> None:
    # so runs made before the upgrade resume; using the new option is another setting
    assert _digest(_Upgraded()) == _digest(_Released())
    assert _digest(_Upgraded(window=3)) != _digest(_Released())
    # an option not declared as added is a setting like any other
    undeclared = type("_Undeclared", (_Upgraded,), {"added_options": {}})
    assert _digest(undeclared()) != _digest(_Released())


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_declared_added_option_is_an_option_of_its_step(name: str) -> None:
    config = step_class(name).Config
    unknown = set(config.added_options) - set(config.model_fields)
    assert not unknown, f"{name}: added_options names no option {sorted(unknown)}"


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
