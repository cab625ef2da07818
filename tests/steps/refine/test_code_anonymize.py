from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.io.read import read_records
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.refine.code_lines import LineRewrite, apply_lines, other_lines, python_lines

CODE = """# Contact: ops@acme-corp.com
import requests

API_KEY = "AKIAIOSFODNN7EXAMPLE"
password = "hunter2secret"


def fetch():
    return requests.get("http://10.0.0.12/api", auth=("admin", password))
"""


def test_secrets_and_pii_replaced_code_still_parses(tmp_path: Path) -> None:
    source = tmp_path / "code.jsonl"
    rows = [{"id": "ok", "text": CODE}, {"id": "bad", "text": "def broken(:\n"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "input": str(source),
        "steps": [{"code_anonymize": {"detector": {"kind": "regex"}, "model_pass": False}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    (record,) = list(read_records(result.dataset_path))
    code = record.fields["text"]
    ast.parse(code)
    for secret in ("ops@acme-corp.com", "AKIAIOSFODNN7EXAMPLE", "hunter2secret", "10.0.0.12"):
        assert secret not in code
    assert "def fetch():" in code and "import requests" in code
    assert record.provenance.conditioning["changed_lines"] == [1, 4, 5, 9]
    assert record.scores["changed_lines"] == 4
    rejected = [json.loads(line) for line in result.rejected_path.read_text().splitlines()]
    assert [(r["record"]["id"], r["reason"]) for r in rejected] == [("bad", "unparsable")]


# A name and a password no regex or detector here knows: only the model can find them.
HIDDEN = '''"""Billing client."""
import os

# Maintainer: Zbigniew Brzeczyszczykiewicz, reviewed 2024
DSN = "sqlite:///billing.db"
SEED = "rT9#kLm2Qx"  # old deploy value
HOST = "localhost"


def port() -> int:
    return int(os.environ.get("PORT", "8080"))
'''


def _shown(request: Request) -> dict[int, str]:
    """The numbered lines a request shows the model."""
    body = request.messages[-1].content.split("Lines:\n", 1)[1].rsplit("\n\nAnswer", 1)[0]
    return {int(n): text for n, text in (line.split(": ", 1) for line in body.splitlines())}


def _scrub(request: Request) -> str:
    """A careful model: rewrites the hidden name and value, and says what it replaced."""
    lines = []
    for number, text in _shown(request).items():
        for value, fake in (("Zbigniew Brzeczyszczykiewicz", "Jan Nowak"), ("rT9#kLm2Qx", "x")):
            if value in text:
                lines.append({"line": number, "text": text.replace(value, fake), "values": [value]})
    return json.dumps({"lines": lines})


def _run(tmp_path: Path, reply, code=HIDDEN, options=None):  # type: ignore[no-untyped-def]
    source = tmp_path / "code.jsonl"
    source.write_text(json.dumps({"id": "c", "text": code}) + "\n")
    step = {"detector": {"kind": "regex"}, **(options or {})}
    spec = {"seed": 3, "input": str(source), "steps": [{"code_anonymize": step}]}
    backend = ScriptedBackend(reply)
    result = datarefinery.run(spec, tmp_path / "out", backend=backend)
    return list(read_records(result.dataset_path)), backend


def test_the_model_sees_every_comment_and_string_line_in_batches() -> None:
    assert python_lines(HIDDEN) == [1, 4, 5, 6, 7, 11]
    multi = 'x = 1\ns = """a\nb"""\ny = f"{x} z"  # c\n'
    assert python_lines(multi) == [2, 3, 4]
    js = 'const a = 1;\n/* by\n   Ann */\nlet u = "x"; // t\nreturn a;\n'
    assert other_lines(js) == [2, 3, 4]


def test_a_verified_model_rewrite_finds_what_detection_missed(tmp_path: Path) -> None:
    (record,), backend = _run(tmp_path, _scrub, options={"batch_lines": 4})
    assert [sorted(_shown(r)) for r in backend.requests] == [[1, 4, 5, 6], [7, 11]]
    code = record.fields["text"]
    ast.parse(code)
    assert "Brzeczyszczykiewicz" not in code and "rT9#kLm2Qx" not in code
    assert "Jan Nowak" in code and 'HOST = "localhost"' in code
    assert record.provenance.conditioning["outcome"] == "rewritten"
    assert record.provenance.conditioning["changed_lines"] == [4, 6]


def test_a_rewritten_line_keeps_its_indentation_whatever_the_model_answers() -> None:
    code = 'def f():\n    # ask Jan Kowalski\n    return "tok_123"\n'
    reply = [
        LineRewrite(line=2, text="# ask the team", values=["Jan Kowalski"]),  # blanks dropped
        LineRewrite(line=3, text='\t\treturn "tok_xyz"', values=["tok_123"]),  # other blanks
    ]
    rewrite, ignored = apply_lines(code, {2, 3}, reply)
    assert rewrite == 'def f():\n    # ask the team\n    return "tok_xyz"\n' and ignored == 0
    ast.parse(rewrite)


def test_a_rewrite_that_breaks_the_code_is_reasked_then_replaced(tmp_path: Path) -> None:
    def broken(request: Request) -> str:
        lines = [
            {"line": n, "text": 'SEED = "x', "values": ["rT9#kLm2Qx"]}
            for n, t in _shown(request).items()
            if "rT9#kLm2Qx" in t
        ]
        return json.dumps({"lines": lines})

    (record,), backend = _run(tmp_path, broken)
    assert len(backend.requests) == 2  # the ask and one re-ask
    assert "no longer parses" in backend.requests[1].messages[-1].content
    code = record.fields["text"]
    ast.parse(code)
    # The fallback replaces the model's checked claim like a detector's find.
    assert "rT9#kLm2Qx" not in code
    conditioning = record.provenance.conditioning
    assert conditioning["outcome"] == "replaced"
    assert "no longer parses" in conditioning["found"]["fallback"]
    assert "rT9#kLm2Qx" not in json.dumps(conditioning)  # counts and types, never values


def test_a_value_the_detectors_found_must_not_remain(tmp_path: Path) -> None:
    code = 'EMAIL = "ops@acme-corp.com"\nNAME = "Ann"\n'

    def lazy(request: Request) -> str:  # rewrites another line, keeps the e-mail address
        return json.dumps({"lines": [{"line": 2, "text": 'NAME = "Bo"', "values": ["Ann"]}]})

    (record,), backend = _run(tmp_path, lazy, code=code)
    assert len(backend.requests) == 2
    assert "still on line(s) 1" in backend.requests[1].messages[-1].content
    assert "ops@acme-corp.com" not in record.fields["text"]
    assert record.provenance.conditioning["outcome"] == "replaced"


def test_claims_off_their_line_and_lines_not_shown_are_ignored(tmp_path: Path) -> None:
    code = 'import os\nX = "plain"\n'

    def wild(request: Request) -> str:
        return json.dumps({"lines": [{"line": 1, "text": "import sys", "values": ["nowhere"]}]})

    (record,), _backend = _run(tmp_path, wild, code=code)
    assert record.fields["text"] == code
    conditioning = record.provenance.conditioning
    assert conditioning["outcome"] == "unchanged"
    assert conditioning["found"]["model_ignored"] == 1
    assert conditioning["found"]["model_dropped"] == 1


def test_other_languages_keep_their_line_structure(tmp_path: Path) -> None:
    code = 'const k = "rT9#kLm2Qx";\nrun(k);\n'

    def splits(request: Request) -> str:  # two lines for one: cut at the line break
        return json.dumps(
            {"lines": [{"line": 1, "text": 'const k = "x";\nevil();', "values": ["rT9#kLm2Qx"]}]}
        )

    (record,), _backend = _run(tmp_path, splits, code=code, options={"language": "other"})
    assert record.fields["text"] == 'const k = "x";\nrun(k);\n'
    assert record.provenance.conditioning["outcome"] == "rewritten"


@pytest.mark.slow
def test_the_embedded_model_reads_the_code(tmp_path: Path) -> None:
    source = tmp_path / "code.jsonl"
    code = '# Owner: ops@acme-corp.com\nKEY = "AKIAIOSFODNN7EXAMPLE"\nN = 1\n'
    source.write_text(json.dumps({"id": "c", "text": code}) + "\n")
    spec = {
        "seed": 1,
        "llm": {"n_ctx": 1024, "n_threads": 1, "max_tokens": 256},
        "input": str(source),
        "steps": [{"code_anonymize": {"detector": {"kind": "regex"}}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    (record,) = list(read_records(result.dataset_path))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["engine"]["backend_calls"] >= 1
    output = record.fields["text"]
    ast.parse(output)
    assert "ops@acme-corp.com" not in output and "AKIAIOSFODNN7EXAMPLE" not in output
    assert record.provenance.conditioning["outcome"] in {"rewritten", "replaced"}
