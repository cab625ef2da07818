from __future__ import annotations

import pytest
from pydantic import ValidationError

from datarefinery.steps.refine.verified_rewrite import reply_cap, rewrite_reply_model


def test_reply_model_caps_length_and_forbids_extra_keys() -> None:
    cap = reply_cap("x" * 100)
    assert cap >= 350 and cap % 250 == 0
    model = rewrite_reply_model(cap)
    assert model.model_json_schema()["properties"]["text"]["maxLength"] == cap
    with pytest.raises(ValidationError):
        model.model_validate({"text": "ok", "note": "extra"})
    with pytest.raises(ValidationError):
        model.model_validate({"text": "y" * (cap + 1)})
