import os
import re
import socket
import subprocess
from pathlib import Path

import httpx

from tests.support.cli import REFINERY, refinery
from tests.support.review import demo_records, write_run


def test_review_serves_on_loopback_with_a_token(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", demo_records(5))
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [*REFINERY, "review", str(out), "--reviewer", "ana"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        printed = "".join(lines)
        assert "reviewing 5 records" in printed and "as ana" in printed
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]{32})", printed)
        assert match, printed
        base = f"http://127.0.0.1:{match.group(1)}/"
        assert httpx.get(base).status_code == 403
        with httpx.Client(follow_redirects=True) as client:
            page = client.get(f"{base}?token={match.group(2)}")
            assert page.status_code == 200 and "r000003" in page.text
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()  # type: ignore[union-attr]


def test_review_of_a_folder_that_is_no_run_says_so(tmp_path: Path) -> None:
    done = refinery("review", tmp_path, "--reviewer", "ana")
    assert done.returncode == 2
    assert "holds no manifest.json" in done.stdout + done.stderr


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", demo_records(2))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        done = refinery("review", out, "--reviewer", "ana", "--port", port)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout + done.stderr
