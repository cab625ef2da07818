import pytest
from pydantic import ValidationError

from datarefinery.config import TaskSpec
from datarefinery.steps.writing import batch_model, item_model

TASK = TaskSpec.model_validate(
    {
        "description": "d",
        "fields": {"text": {"min_chars": 5, "max_chars": 20}, "label": {"type": "label"}},
        "labels": ["a", "b"],
    }
)


def test_item_schema_caps_text_and_forbids_extra_keys() -> None:
    model = item_model(TASK, ["text"])
    schema = model.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["text"]["maxLength"] == 20
    assert schema["properties"]["text"]["minLength"] == 5
    with pytest.raises(ValidationError):
        model.model_validate({"text": "long enough", "label": "a"})


def test_batch_schema_fixes_the_count() -> None:
    schema = batch_model(item_model(TASK, ["text"]), 3).model_json_schema()
    assert schema["properties"]["records"]["minItems"] == 3
    assert schema["properties"]["records"]["maxItems"] == 3
