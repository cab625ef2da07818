"""The refine / eval commands, run as a user runs them (a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import refinery


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_refine_pii_dirs_writes_a_run_directory_and_rejects_bad_records(tmp_path: Path) -> None:
    source = _jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "text": "Write to anna@example.com or 555-123-4567."},
            {"id": "empty", "text": ""},
            {"id": "huge", "text": "a" * 1_000_001},
        ],
    )
    out = tmp_path / "out"
    done = refinery(
        "refine", "pii", source, "-o", out, "--method", "dirs", "--detector", "regex", "-q"
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a"]
    assert "anna@example.com" not in rows[0]["fields"]["text"]
    assert "555-123-4567" not in rows[0]["fields"]["text"]
    rejected = {
        json.loads(x)["record"]["id"]: json.loads(x)
        for x in (out / "rejected.jsonl").read_text().splitlines()
    }
    assert rejected["empty"]["reason"] == "empty"
    assert rejected["huge"]["reason"] == "too_long"
    assert "1,000,001 characters" in rejected["huge"]["detail"]
    assert (out / "manifest.json").exists()
    again = refinery(
        "refine", "pii", source, "-o", out, "--method", "dirs", "--detector", "regex", "-q"
    )
    assert again.returncode == 0  # resumes the same run


def test_refine_pii_with_a_key_file_gives_separate_runs_the_same_fakes(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "Write to anna@example.com."}])
    key = tmp_path / "pii.key"
    key.write_text("5e" * 32 + "\n")
    base = ("refine", "pii", source, "--method", "dirs", "--detector", "regex", "-q")
    exposed = refinery(*base, "-o", tmp_path / "exposed", "--key-file", key)
    assert exposed.returncode == 2 and "chmod 600" in exposed.stderr
    key.chmod(0o600)
    for name in ("train", "test"):
        done = refinery(*base, "-o", tmp_path / name, "--key-file", key)
        assert done.returncode == 0, done.stderr
    train, test = (tmp_path / name / "dataset.jsonl" for name in ("train", "test"))
    assert "anna@example.com" not in train.read_text()
    assert train.read_text() == test.read_text()
    manifest = (tmp_path / "train" / "manifest.json").read_text()
    assert str(key) in manifest and "5e" * 32 not in manifest


def test_non_utf8_input_is_a_clear_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "caf\xe9"}\n')
    done = refinery("refine", "code", source, "-o", tmp_path / "out", "-q")
    assert done.returncode == 2
    assert "bad.jsonl, line 2: not UTF-8" in done.stderr


def test_eval_pii_writes_figures_per_method(tmp_path: Path) -> None:
    text = "Mail anna@kowalski.org today."
    gold = _jsonl(
        tmp_path / "gold.jsonl",
        [
            {
                "id": "g1",
                "text": text,
                "spans": [
                    {
                        "entity_type": "EMAIL_ADDRESS",
                        "start": 5,
                        "end": 22,
                        "value": "anna@kowalski.org",
                    }
                ],
            }
        ],
    )
    out = tmp_path / "result.json"
    done = refinery(
        "eval",
        "pii",
        "--gold",
        gold,
        "--out",
        out,
        "--method",
        "dirs",
        "--method",
        "dirs_surrogate",
        "--detector",
        "regex",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    for method in ("dirs", "dirs_surrogate"):
        figures = result["methods"][method]
        assert figures["token_recall"] == 1.0 and figures["lenient_recall"] == 1.0
        assert figures["precision"] == 1.0 and figures["f1"] == 1.0 and figures["leaks"] == 0
    assert "token recall" in done.stdout and "lenient recall" in done.stdout
    unknown = refinery("eval", "pii", "--gold", gold, "--method", "magic")
    assert unknown.returncode == 2 and "unknown method" in unknown.stderr


def test_refine_and_run_share_the_exit_handling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``refine`` commands go through ``cli.run.run_and_report`` like ``run``: interrupted is 130
    with the resume hint, a run stopped early is 3."""
    from typer.testing import CliRunner

    import datarefinery
    from datarefinery.cli.app import app
    from datarefinery.cli.console import EXIT_INTERRUPTED, EXIT_STOPPED
    from datarefinery.runner import RunResult

    source = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "def f():\n    return 1\n"}])
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: s\ninput: {source}\nsteps:\n  - code_anonymize: {{}}\n")

    def interrupted(*args: object, **kwargs: object) -> RunResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(datarefinery, "run", interrupted)
    runner = CliRunner()
    for args in (["run", str(spec)], ["refine", "code", str(source)]):
        done = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "-q"])
        assert done.exit_code == EXIT_INTERRUPTED, done.output
        assert "run the same command to resume" in done.output

    def stopped(*args: object, **kwargs: object) -> RunResult:
        return RunResult(run_dir=tmp_path / "out", status="stopped", dataset_size=0)

    monkeypatch.setattr(datarefinery, "run", stopped)
    monkeypatch.setattr("datarefinery.cli.progress.print_summary", lambda console, result: None)
    for args in (["run", str(spec)], ["refine", "code", str(source)]):
        done = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "-q"])
        assert done.exit_code == EXIT_STOPPED, done.output


def test_detox_commands_pass_the_meaning_check_to_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import datarefinery
    from datarefinery.cli.app import app
    from datarefinery.runner import RunResult

    seen: list[dict[str, Any]] = []

    def captured(spec: dict[str, Any], *args: object, **kwargs: object) -> RunResult:
        seen.append(spec)
        raise KeyboardInterrupt

    monkeypatch.setattr(datarefinery, "run", captured)
    source = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "you idiot"}])
    runner = CliRunner()
    args = ["refine", "detox", str(source), "-o", str(tmp_path / "out"), "-q"]
    runner.invoke(app, [*args, "--meaning-check", "judge"])
    runner.invoke(app, args)
    checks = [spec["steps"][0]["detox_rewrite"]["meaning_check"] for spec in seen]
    assert checks == ["judge", "both"]

    def evaluated(*args: object, options: dict[str, Any], **kwargs: object) -> None:
        seen.append(options)
        raise KeyboardInterrupt

    monkeypatch.setattr("datarefinery.cli.refine.evaluate_detox", evaluated)
    pairs = ["eval", "detox", "--pairs", str(source), "--meaning-check", "cosine"]
    runner.invoke(app, pairs)
    assert seen[-1] == {"scorer": "profanity", "meaning_check": "cosine"}
