"""``refinery export``: formats and field options as a user types them, and their exit codes."""

import json
from pathlib import Path

from typer.testing import CliRunner

from datarefinery.cli.app import app
from datarefinery.cli.console import EXIT_USAGE

RUNNER = CliRunner()


def _said(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_sft_messages_with_field_options(tmp_path: Path) -> None:
    data = _jsonl(
        tmp_path / "qa.jsonl",
        [{"id": "a", "q": "Why is the sky blue?", "a": "Scattering.", "persona": "A physicist."}],
    )
    out = tmp_path / "sft.jsonl"
    done = RUNNER.invoke(
        app,
        [
            "export",
            str(data),
            "-o",
            str(out),
            "--format",
            "sft-messages",
            "--prompt-field",
            "q",
            "--response-field",
            "a",
            "--system-field",
            "persona",
            "--keep",
            "id",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "wrote 1 rows to" in done.output
    assert json.loads(out.read_text()) == {
        "messages": [
            {"role": "system", "content": "A physicist."},
            {"role": "user", "content": "Why is the sky blue?"},
            {"role": "assistant", "content": "Scattering."},
        ],
        "id": "a",
    }


def test_dpo_from_a_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    record = {"id": "p", "fields": {"prompt": "2+2?", "chosen": "4", "rejected": "5"}}
    _jsonl(run / "dataset.jsonl", [record])
    done = RUNNER.invoke(app, ["export", str(run), "-o", str(tmp_path / "dpo.jsonl"), "-f", "dpo"])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "dpo.jsonl").read_text()) == {
        "prompt": "2+2?",
        "chosen": "4",
        "rejected": "5",
    }


def test_without_format_the_suffix_still_chooses(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _jsonl(run / "dataset.jsonl", [{"id": "r", "fields": {"text": "Fine.", "label": "positive"}}])
    done = RUNNER.invoke(app, ["export", str(run), "-o", str(tmp_path / "out.csv")])
    assert done.exit_code == 0, done.output
    assert "wrote 1 records" in done.output
    assert (tmp_path / "out.csv").read_text().startswith("id,text,label,provenance")


def test_a_missing_field_exits_2_naming_file_line_record_and_option(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "in.jsonl", [{"id": "r7", "text": "Fine.", "label": "positive"}])
    done = RUNNER.invoke(
        app, ["export", str(data), "-o", str(tmp_path / "o.jsonl"), "-f", "alpaca"]
    )
    assert done.exit_code == EXIT_USAGE
    message = _said(done.output)
    assert "in.jsonl, line 1, field 'prompt': record r7: no prompt field" in message
    assert "set --prompt-field" in message


def test_bad_format_and_stray_options_exit_2(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}])
    out = str(tmp_path / "o.jsonl")
    done = RUNNER.invoke(app, ["export", str(data), "-o", out, "-f", "chatml"])
    assert done.exit_code == EXIT_USAGE
    assert "unknown export format 'chatml'" in done.output
    done = RUNNER.invoke(app, ["export", str(data), "-o", out, "--prompt-field", "q"])
    assert done.exit_code == EXIT_USAGE
    assert "field mapping options apply to the training formats" in _said(done.output)


def test_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = RUNNER.invoke(app, ["export", str(tmp_path), "-o", str(tmp_path / "o.jsonl")])
    assert done.exit_code == EXIT_USAGE
    assert "has no dataset.jsonl" in _said(done.output)


def test_help_lists_the_formats() -> None:
    done = RUNNER.invoke(app, ["export", "--help"])
    assert done.exit_code == 0
    for name in ("sft-messages", "sharegpt", "alpaca", "dpo-messages", "--chosen-field"):
        assert name in done.output
