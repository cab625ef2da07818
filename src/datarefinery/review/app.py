"""The review page: a Starlette app over one run directory's review queue.

Access: every request must carry the token ``refinery review`` printed, compared in constant
time. The first load brings it as ``?token=``; the answer sets it as a cookie (HttpOnly,
SameSite=Strict, named after the port so two pages on one machine do not overwrite each other) and
redirects to the same address without it, so the token does not stay in the address bar. Requests
that change something (POST) must also send it in the ``X-Review-Token`` header, which only the
page's own script can do: a page from another site cannot make a reviewer's browser decide.

Decisions go to ``DecisionStore`` as each is made (a bulk action in one transaction), and into an
in-memory copy of the decisions in force that the page shows.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from datarefinery.decisions import ACTIONS, Decision, DecisionStore
from datarefinery.errors import UsageError
from datarefinery.review.load import RunRecords
from datarefinery.review.queue import FACETS, Entry, ReviewQueue

PAGE_SIZE = 50
_HEADER = "x-review-token"
# Only what the app itself serves: no inline script, nothing from another origin.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _cookie(scope: Scope) -> str:
    server = scope.get("server") or ("", 0)
    return f"refinery_review_{server[1]}"


class TokenGate:
    """403 for every request without the token; see the module docstring for where it may be."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        from_query = request.query_params.get("token")
        if request.method == "GET" and self._ok(from_query):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            answer: Response = RedirectResponse(target, status_code=303)
            answer.set_cookie(
                _cookie(scope), from_query or "", httponly=True, samesite="strict", path="/"
            )
            await answer(scope, receive, send)
            return
        given = request.cookies.get(_cookie(scope)) if request.method == "GET" else None
        if request.method == "POST":
            given = request.headers.get(_HEADER)
        if self._ok(given):
            await self.app(scope, receive, send)
            return
        answer = PlainTextResponse(
            "403 Forbidden: open the address `refinery review` printed; it carries the token.",
            status_code=403,
        )
        await answer(scope, receive, send)


@dataclass
class ReviewState:
    out: Path
    reviewer: str
    queue: ReviewQueue
    run: RunRecords
    store: DecisionStore
    decided: dict[str, Decision] = field(default_factory=dict)


def _filters(params: Any) -> dict[str, str]:
    return {name: str(params.get(name, "")) for name in FACETS if params.get(name)}


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _decision(state: ReviewState, body: dict[str, Any], record_id: str) -> Decision:
    """The decision a request body asks for, checked against the run (raises UsageError)."""
    action = body.get("action")
    if action not in ACTIONS:
        raise UsageError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    label = body.get("label")
    if label is not None:
        label = str(label)
        if state.run.labels and label not in state.run.labels:
            raise UsageError(f"label {label!r} is not one of {', '.join(state.run.labels)}")
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise UsageError("fields must be a mapping of field name to new value")
    reason = body.get("reason")
    return Decision(
        record_id=record_id,
        action=action,
        by=state.reviewer,
        label=label,
        fields=fields,
        reason=str(reason) if reason else None,
    )


async def _decide(request: Request) -> Response:
    state: ReviewState = request.app.state.review
    body = await request.json()
    record_id = str(body.get("record_id", ""))
    if record_id not in state.queue.by_id:
        return _bad(f"no record {record_id!r} in this run", 404)
    try:
        decision = _decision(state, body, record_id)
    except UsageError as exc:
        return _bad(str(exc))
    state.store.record(decision)
    state.decided[record_id] = decision
    return JSONResponse(decision.to_dict())


async def _bulk(request: Request) -> Response:
    state: ReviewState = request.app.state.review
    body = await request.json()
    filters = _filters(body.get("filters") or {})
    positions = state.queue.matching(filters)
    if body.get("count") != len(positions):
        return _bad(
            f"the filter now matches {len(positions)} records, not the {body.get('count')} "
            "you confirmed: reload the page and confirm again",
            409,
        )
    try:
        decisions = [_decision(state, body, state.queue.entries[i].id) for i in positions]
    except UsageError as exc:
        return _bad(str(exc))
    state.store.record_many(decisions)
    state.decided.update((d.record_id, d) for d in decisions)
    return JSONResponse({"decided": len(decisions)})


def _said(decision: Decision | None) -> str:
    if decision is None:
        return ""
    what = {"correct": f"correct → {decision.label}", "reject": "reject"}.get(
        decision.action, decision.action
    )
    if decision.action == "reject" and decision.reason:
        what += f" ({decision.reason})"
    return f"{what} · {decision.by}"


def _snippet(fields: dict[str, Any]) -> str:
    text = fields.get("text")
    if not isinstance(text, str):
        text = next((v for v in fields.values() if isinstance(v, str)), json.dumps(fields))
    return text if len(text) <= 160 else text[:157] + "…"


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _row(state: ReviewState, entry: Entry) -> dict[str, Any]:
    """What the template shows of one queue entry."""
    record = entry.shown.record
    parents = state.run.parents
    return {
        "id": record.id,
        "status": entry.shown.status,
        "step": entry.shown.step,
        "label": entry.facet("label"),
        "reason": entry.shown.reason,
        "detail": entry.shown.detail,
        "certainty": "" if entry.certainty is None else f"{entry.certainty:.2f}",
        "certainty_from": entry.certainty_from,
        "outcome": entry.outcome or "",
        "snippet": _snippet(record.fields),
        "fields": record.fields,
        "fields_text": _pretty(record.fields),
        "provenance": _pretty(record.provenance.to_dict()),
        "scores": _pretty(record.scores),
        "parents": [
            (pid, _pretty(parents[pid]) if pid in parents else None)
            for pid in record.provenance.parent_ids
        ],
        "decision": _said(state.decided.get(record.id)),
        "decided_at": state.decided[record.id].at if record.id in state.decided else "",
    }


def _page_link(filters: dict[str, str], number: int) -> str:
    return "?" + urlencode({**filters, "page": number})


async def _index(request: Request) -> Response:
    state: ReviewState = request.app.state.review
    filters = _filters(request.query_params)
    try:
        number = int(request.query_params.get("page", "1"))
    except ValueError:
        number = 1
    page = state.queue.page(filters, number, PAGE_SIZE)
    template: jinja2.Template = request.app.state.template
    html = template.render(
        out=str(state.out),
        source=state.run.source,
        reviewer=state.reviewer,
        token=request.app.state.token,
        page=page,
        rows=[_row(state, entry) for entry in page.entries],
        first=(page.number - 1) * PAGE_SIZE,
        total_all=len(state.queue),
        filters=filters,
        facets={name: state.queue.values(name) for name in FACETS},
        labels=state.run.labels,
        sort_by=state.queue.sort_by,
        prev_link=_page_link(filters, page.number - 1) if page.number > 1 else None,
        next_link=_page_link(filters, page.number + 1) if page.number < page.pages else None,
        filters_json=json.dumps(filters),
    )
    return Response(html, media_type="text/html; charset=utf-8")


def _asset(name: str, media_type: str) -> Route:
    body = resources.files("datarefinery.review").joinpath("static", name).read_bytes()

    async def serve(request: Request) -> Response:
        return Response(body, media_type=media_type)

    return Route(f"/static/{name}", serve)


class _Headers:
    """Adds the Content-Security-Policy and no-store to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", _CSP.encode()))
                headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def create_app(
    out: Path, run: RunRecords, *, reviewer: str, token: str, sort_by: str | None = None
) -> ASGIApp:
    """The review app for the run directory ``out`` whose records ``run`` holds."""
    if not reviewer.strip():
        raise UsageError(
            "the review page needs a reviewer's name: refinery review OUT --reviewer NAME"
        )
    store = DecisionStore.of_run(out)
    queue = ReviewQueue(run.records, judge_steps=run.judge_steps, sort_by=sort_by)
    app = Starlette(
        routes=[
            Route("/", _index),
            Route("/api/decisions", _decide, methods=["POST"]),
            Route("/api/bulk", _bulk, methods=["POST"]),
            _asset("review.js", "text/javascript; charset=utf-8"),
            _asset("review.css", "text/css; charset=utf-8"),
        ]
    )
    app.state.review = ReviewState(out, reviewer, queue, run, store, store.latest())
    app.state.token = token
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("datarefinery.review", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.state.template = env.get_template("page.html.jinja")
    return _Headers(TokenGate(app, token))
