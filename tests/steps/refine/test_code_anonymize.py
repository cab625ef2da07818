from __future__ import annotations

import ast
import json
from pathlib import Path

import datarefinery
from datarefinery.io.read import read_records

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
        "steps": [{"code_anonymize": {"detector": {"kind": "regex"}}}],
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
