"""Headless Chromium driven over the DevTools protocol: open a page, collect console errors,
evaluate a script, take a screenshot. Chromium comes from Debian (scripts/dev.py installs it)."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websocket

# Without the background-networking flags Chromium tries to reach Google's hosts at start-up,
# which this closed network refuses (see the machine notes).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1200,900",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "Chromium is not installed: `python3 scripts/dev.py test` installs it "
            "(apt-get install chromium)"
        )
    return found


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)
    value: Any = None
    screenshot: bytes = b""


class _Session:
    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))


@contextmanager
def _browser() -> Iterator[str]:
    # Chromium's helper processes may still be writing the profile as the browser exits: they get
    # their own session so they go with it, and a straggler's file does not fail the test.
    with tempfile.TemporaryDirectory(
        prefix="refinery-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 60
            port = None
            while port is None:
                line = process.stderr.readline()
                match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
                if match:
                    port = match.group(1)
                elif not line and process.poll() is not None:
                    raise RuntimeError(f"chromium exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("chromium did not open its DevTools port in 60 s")
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            process.stderr.close()  # type: ignore[union-attr]


def open_page(path: Path, script: str) -> PageResult:
    """Load ``path``, then evaluate ``script`` (an expression; its JSON value is returned).
    ``errors`` lists console errors, uncaught exceptions and browser log errors (a blocked
    request, e.g. by the page's Content-Security-Policy, is one)."""
    with _browser() as base:
        targets = httpx.get(f"{base}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        session = _Session(page["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Log"):
                session.call(f"{domain}.enable")
            session.call("Page.navigate", url=path.resolve().as_uri())
            session.wait_for("Page.loadEventFired")
            evaluated = session.call("Runtime.evaluate", expression=script, returnByValue=True)
            shot = session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            session.call("Runtime.evaluate", expression="1")  # drain late events
        finally:
            session.ws.close()
    result = PageResult(
        value=evaluated.get("result", {}).get("value"),
        screenshot=base64.b64decode(shot.get("data", "")),
    )
    for event in session.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            result.errors.append(f"console: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            result.errors.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            result.errors.append(f"log: {params['entry'].get('text')}")
    return result


class LivePage:
    """One tab of a running Chromium, for pages served over HTTP: navigate, type keys, read the
    DOM, take screenshots. Console errors and exceptions collect in ``errors()``."""

    def __init__(self, session: _Session) -> None:
        self.session = session

    def goto(self, url: str) -> int:
        """Load ``url``; the HTTP status of the document finally shown (after redirects)."""
        self.session.events.clear()
        self.session.call("Page.navigate", url=url)
        self.session.wait_for("Page.loadEventFired")
        statuses = [
            e["params"]["response"]["status"]
            for e in self.session.events
            if e.get("method") == "Network.responseReceived"
            and e["params"].get("type") == "Document"
        ]
        return int(statuses[-1])

    def evaluate(self, script: str) -> Any:
        answer = self.session.call("Runtime.evaluate", expression=script, returnByValue=True)
        return answer.get("result", {}).get("value")

    def wait_until(self, script: str, timeout: float = 10) -> Any:
        """Evaluate ``script`` until it is truthy (the page's fetches are asynchronous)."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(script)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {script}")
            time.sleep(0.05)
        return value

    def press(self, key: str) -> None:
        """A real key press (keyDown with its text, then keyUp), as a person typing sends it."""
        text = {"text": key} if len(key) == 1 else {}
        self.session.call("Input.dispatchKeyEvent", type="keyDown", key=key, **text)
        self.session.call("Input.dispatchKeyEvent", type="keyUp", key=key)

    def screenshot(self) -> bytes:
        shot = self.session.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot.get("data", ""))

    def errors(self) -> list[str]:
        found = []
        for event in self.session.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
                found.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
        return found


@contextmanager
def live_page() -> Iterator[LivePage]:
    """A fresh headless Chromium (its own profile) with one tab, closed on exit."""
    with _browser() as base:
        targets = httpx.get(f"{base}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        session = _Session(page["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Network"):
                session.call(f"{domain}.enable")
            yield LivePage(session)
        finally:
            session.ws.close()
