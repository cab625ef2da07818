from pathlib import Path

import pytest

from datarefinery.errors import ConfigError
from datarefinery.llm.base import Message
from datarefinery.prompts.render import load_template, split_messages


def test_sections_become_messages() -> None:
    text = "### system\nBe brief.\n### user\nHi {{ name }}"
    assert split_messages(text, "t") == (
        Message("system", "Be brief."),
        Message("user", "Hi {{ name }}"),
    )


def test_text_before_first_marker_is_an_error() -> None:
    with pytest.raises(ConfigError, match="before the first"):
        split_messages("hello\n### user\nhi", "t")


def test_last_message_must_be_user() -> None:
    with pytest.raises(ConfigError, match="last message"):
        split_messages("### user\nhi\n### assistant\nhello", "t")


def test_template_file_overrides_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "mine.jinja"
    path.write_text("### user\nWrite about {{ topic }}.")
    template = load_template(str(path))
    assert template.render(topic="cats") == (Message("user", "Write about cats."),)
    assert len(template.hash) == 12
    with pytest.raises(ConfigError, match="'topic' is undefined"):
        template.render()


def test_unknown_template_lists_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="zero_shot"):
        load_template("no_such_template")
