"""The review page in headless Chromium, served by the real app on loopback."""

from pathlib import Path

from datarefinery.decisions import DecisionStore
from datarefinery.records import Record, Rejected
from tests.support.chromium import live_page
from tests.support.review import TOKEN, demo_records, serving, write_run

DECISIONS = "[...document.querySelectorAll('tr.row td.decision')].map(d => d.textContent)"


def _run(tmp_path: Path) -> Path:
    records = demo_records(60)
    derived = Record(
        "para1",
        {
            "text": "A warm cast and a clever script: an easy film to recommend.",
            "label": "positive",
        },
    )
    derived.provenance.step, derived.provenance.technique = "paraphrase", "paraphrase"
    derived.provenance.parent_ids = ["r000003"]
    derived.scores = {"label_agreement": 0.2, "route": "label", "route_reason": "0.20 < 0.67"}
    rejected = [Rejected(r, "judge", "low_score", "fluent 1 < 3") for r in demo_records(64)[60:]]
    out = write_run(tmp_path / "run", [*records, derived], rejected, status="waiting")
    return out


def test_the_page_keyboard_decisions_and_a_reload(tmp_path: Path) -> None:
    out = _run(tmp_path)
    with serving(out) as url, live_page() as page:
        assert page.goto(url) == 403
        assert "403" in page.evaluate("document.body.innerText")
        assert page.goto(f"{url}?token={TOKEN}") == 200
        assert page.evaluate("location.search") == ""  # the token left the address bar
        assert page.evaluate("document.querySelectorAll('tr.row').length") == 50
        first, second = page.evaluate(
            "[...document.querySelectorAll('tr.row')].slice(0, 2).map(r => r.dataset.id)"
        )
        assert first == "para1"  # routed, least certain: first in the queue
        assert "A warm cast" in page.evaluate(
            "document.querySelector('section.detail:not([hidden])').innerText"
        )
        assert "Parent r000003" in page.evaluate(
            "document.querySelector('section.detail:not([hidden])').innerText"
        )
        page.press("a")
        page.wait_until("document.querySelectorAll('tr.row td.decision')[0].textContent")
        page.press("c")
        page.wait_until("document.getElementById('correct-dialog').open")
        page.press("2")  # the second label: negative
        page.wait_until("document.querySelectorAll('tr.row td.decision')[1].textContent")
        page.press("j")
        page.press("k")
        shown = page.evaluate(DECISIONS)
        assert shown[:3] == ["accept · ana", "correct → negative · ana", ""]
        assert page.errors() == []
        assert page.goto(url) == 200  # a reload: the cookie carries the token now
        assert page.evaluate(DECISIONS)[:3] == shown[:3]
    latest = DecisionStore.of_run(out).latest()
    assert (latest[first].action, latest[first].by) == ("accept", "ana")
    assert (latest[second].action, latest[second].label) == ("correct", "negative")


def test_a_rejected_filter_and_the_reason(tmp_path: Path) -> None:
    out = _run(tmp_path)
    with serving(out) as url, live_page() as page:
        assert page.goto(f"{url}?token={TOKEN}&status=rejected") == 200
        assert page.evaluate("document.querySelectorAll('tr.row').length") == 4
        assert "low_score" in page.evaluate(
            "document.querySelector('section.detail:not([hidden])').innerText"
        )
        page.press("r")
        page.wait_until("document.getElementById('reject-dialog').open")
        page.evaluate("document.getElementById('reject-reason').value = 'gibberish'")
        page.evaluate("document.querySelector('#reject-dialog button[value=reject]').click()")
        page.wait_until("document.querySelectorAll('tr.row td.decision')[0].textContent")
        assert page.errors() == []
    (decision,) = DecisionStore.of_run(out).latest().values()
    assert (decision.action, decision.reason) == ("reject", "gibberish")
