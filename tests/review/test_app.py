from pathlib import Path

import pytest
from starlette.testclient import TestClient

from datarefinery.decisions import DecisionStore
from datarefinery.errors import UsageError
from datarefinery.records import Rejected
from datarefinery.review.app import create_app
from datarefinery.review.load import load_run
from tests.support.review import demo_records, write_run

TOKEN = "t0ken-for-tests"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    rejected = [Rejected(demo_records(121)[120], "judge", "low_score", "fluent 1 < 3")]
    return write_run(tmp_path / "run", demo_records(120), rejected)


def _client(out: Path, reviewer: str = "ana") -> TestClient:
    app = create_app(out, load_run(out), reviewer=reviewer, token=TOKEN)
    return TestClient(app, base_url="http://127.0.0.1:8123", follow_redirects=False)


def _signed_in(out: Path, reviewer: str = "ana") -> TestClient:
    client = _client(out, reviewer)
    first = client.get(f"/?token={TOKEN}&label=positive")
    assert first.status_code == 303 and first.headers["location"] == "/?label=positive"
    assert "HttpOnly" in first.headers["set-cookie"]
    assert "samesite=strict" in first.headers["set-cookie"].lower()
    return client


def test_every_request_without_the_token_is_refused(run_dir: Path) -> None:
    client = _client(run_dir)
    for path in ("/", "/static/review.js", "/static/review.css", "/nothing"):
        assert client.get(path).status_code == 403
        assert client.get(f"{path}?token=wrong").status_code == 403
    assert client.post("/api/decisions", json={"record_id": "r000001"}).status_code == 403
    # The cookie alone does not let a POST through: only the page's script sends the header.
    signed = _signed_in(run_dir)
    posted = signed.post("/api/decisions", json={"record_id": "r000001", "action": "accept"})
    assert posted.status_code == 403
    assert DecisionStore.of_run(run_dir).latest() == {}


def test_the_page_shows_one_page_of_the_queue_with_its_context(run_dir: Path) -> None:
    client = _signed_in(run_dir)
    page = client.get("/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert html.count('<tr class="row') == 50
    assert "121</b> matching" in html and "page 1 of 3" in html
    assert "label_agreement 0.40 &lt; 0.67" in html  # the route reason, escaped
    rejected = client.get("/?status=rejected").text
    assert "Rejected by <b>judge</b>: <b>low_score</b> fluent 1 &lt; 3" in rejected
    assert client.get("/static/review.js").headers["content-type"].startswith("text/javascript")


def test_decisions_are_stored_as_made_with_the_reviewer(run_dir: Path) -> None:
    client = _signed_in(run_dir)
    headers = {"x-review-token": TOKEN}
    made = client.post(
        "/api/decisions",
        json={"record_id": "r000003", "action": "correct", "label": "positive"},
        headers=headers,
    )
    assert made.status_code == 200 and made.json()["by"] == "ana"
    latest = DecisionStore.of_run(run_dir).latest()
    assert (latest["r000003"].action, latest["r000003"].label) == ("correct", "positive")
    bad = client.post(
        "/api/decisions",
        json={"record_id": "r000003", "action": "correct", "label": "meh"},
        headers=headers,
    )
    assert bad.status_code == 400 and "not one of positive, negative" in bad.json()["error"]
    missing = client.post(
        "/api/decisions", json={"record_id": "nope", "action": "accept"}, headers=headers
    )
    assert missing.status_code == 404
    # A restart (or a second reviewer) sees the decision, with who made it.
    assert "correct → positive · ana" in _signed_in(run_dir, "ben").get("/").text


def test_bulk_applies_one_decision_to_the_filter_in_one_go(run_dir: Path) -> None:
    client = _signed_in(run_dir)
    headers = {"x-review-token": TOKEN}
    body = {"action": "reject", "reason": "off topic", "filters": {"status": "routed"}}
    stale = client.post("/api/bulk", json={**body, "count": 11}, headers=headers)
    assert stale.status_code == 409 and "matches 12" in stale.json()["error"]
    done = client.post("/api/bulk", json={**body, "count": 12}, headers=headers)
    assert done.json() == {"decided": 12}
    latest = DecisionStore.of_run(run_dir).latest()
    assert len(latest) == 12 and {d.reason for d in latest.values()} == {"off topic"}


def test_a_reviewer_name_is_required(run_dir: Path) -> None:
    with pytest.raises(UsageError, match="--reviewer NAME"):
        create_app(run_dir, load_run(run_dir), reviewer=" ", token=TOKEN)
