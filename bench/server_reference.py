"""A real continuous-batching server as the reference: llama.cpp's own ``llama-server`` on loopback
with several slots and a real model (the embedded default SmolLM2-135M unless told), and the same
requests sent by

- ``direct@C``: a bare ``httpx.AsyncClient`` with C requests in flight (several C are tried; the
  best median is "the best direct client"),
- ``ours``: ``datarefinery.run`` with an OpenAI-compatible ``llm:`` block, ``concurrency`` = slots,
- ``distilabel`` and ``curator`` (pinned virtualenvs, ``bench/peers.py``).

Every request is the same: one user message from a fixed set of short prompts, ``max_tokens``
fixed, temperature 0. Each (client, round) runs in its own process (``bench/server_tasks/``),
the order rotating round by round, after one unmeasured warm-up run. ``seconds`` excludes
interpreter start-up and imports. Completion tokens are the server's own count
(``tokens_predicted_total`` of ``/metrics``, before and after each run), so every client is
measured by the same counter. Each ratio is a ratio of median rates (``bench/ratios.py``).

The server is built by ``bench/llama_server/build.sh`` (called here; it reuses a finished build).

    .venv/bin/python bench/server_reference.py [--slots 4] [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from datarefinery.llm.models import default_model_path
from peers import TOOLS, env_for, free_port, prepare
from ratios import MIN_ROUNDS, describe, ratio_of_medians

HERE = Path(__file__).resolve().parent
TOPICS = [
    "the moon", "bread", "rivers", "chess", "bees", "winter", "trains", "libraries",
    "volcanoes", "coffee", "bicycles", "the ocean", "music", "gardens", "clocks", "mountains",
]  # fmt: skip
FORMS = [
    "Write two sentences about {}.",
    "Give three short facts about {}.",
    "Explain {} to a child in one short paragraph.",
    "Write a four-line poem about {}.",
]


def prompts(count: int) -> list[str]:
    every = [form.format(topic) for form in FORMS for topic in TOPICS]
    return [every[i % len(every)] for i in range(count)]


def server_binary(given: Path | None) -> Path:
    if given is not None:
        return given
    built = subprocess.run(
        ["bash", str(HERE / "llama_server" / "build.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(built.stdout.strip().splitlines()[-1])


@contextmanager
def llama_server(binary: Path, args: argparse.Namespace, log: Path) -> Iterator[str]:
    """``llama-server`` on a free loopback port until the block ends; yields its root URL."""
    port = free_port()
    command = [
        str(binary), "-m", str(args.model), "--host", "127.0.0.1", "--port", str(port),
        "--parallel", str(args.slots), "-c", str(args.ctx_per_slot * args.slots),
        "--threads", str(args.threads), "--threads-batch", str(args.threads),
        "--cont-batching", "--metrics", "--no-webui",
        # The default length of a reply whose request names none: curator's rate-limit probe
        # (an empty chat) would otherwise generate until its slot's context is full.
        "--n-predict", str(args.max_tokens),
    ]  # fmt: skip
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"llama-server exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy in 120 s")
            time.sleep(0.5)
        yield root
    finally:
        server.terminate()
        server.wait(timeout=30)


def server_counters(root: str) -> dict[str, float]:
    """llama-server's cumulative counters (``llamacpp:*_total`` of ``/metrics``)."""
    text = httpx.get(f"{root}/metrics", timeout=10).text
    found = re.findall(r"^llamacpp:(\w+_total)\s+(\S+)", text, re.MULTILINE)
    counters = {name: float(value) for name, value in found}
    if "tokens_predicted_total" not in counters:
        raise RuntimeError("llama-server's /metrics has no tokens_predicted_total")
    return counters


def run_once(
    client: str, root: str, job: dict[str, Any], pythons: dict[str, Path], venvs: Path
) -> dict[str, Any]:
    """One client's run of the job in its own process: seconds, requests and server tokens."""
    tool, _, in_flight = client.partition("@")
    job = dict(job, concurrency=int(in_flight) if in_flight else job["concurrency"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "job.json").write_text(json.dumps(job))
        before = server_counters(root)
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(pythons[tool]),
                str(HERE / "server_tasks" / f"{tool}_task.py"),
                f"{root}/v1",
                str(work / "job.json"),
                str(work),
            ],
            capture_output=True,
            text=True,
            env=env_for(tool, venvs, work),
            cwd=work,
        )
        wall = time.perf_counter() - started
        after = server_counters(root)
    if done.returncode != 0:
        raise RuntimeError(f"{client} failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    if measured["records"] != len(job["prompts"]):
        raise RuntimeError(f"{client} answered {measured['records']} of {len(job['prompts'])}")
    seconds = float(measured["seconds"])
    # What the server did meanwhile: decode calls, prompt tokens evaluated or taken from its cache,
    # and its own busy seconds, which tell a client's idle gaps from the server's work.
    server = {name: round(after[name] - before.get(name, 0.0), 3) for name in after}
    tokens = server["tokens_predicted_total"]
    return {
        "seconds": seconds,
        "wall": wall,
        "requests_per_s": measured["records"] / seconds,
        "tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "server": server,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", type=Path, default=None, help="default: build.sh's binary")
    parser.add_argument("--model", type=Path, default=None, help="default: SmolLM2-135M")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx-per-slot", type=int, default=512)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--in-flight", default="1,slots,2slots", help="direct client levels")
    parser.add_argument(
        "--tools", default="ours,distilabel,curator", help="ours@C: ours at concurrency C"
    )
    parser.add_argument(
        "--venvs", type=Path, default=Path.home() / ".cache" / "datarefinery-bench" / "venvs"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.model = args.model or default_model_path()
    return args


def in_flight_levels(spec: str, slots: int) -> list[int]:
    levels = []
    for part in spec.split(","):
        level = int(part.replace("2slots", str(2 * slots)).replace("slots", str(slots)))
        if level not in levels:
            levels.append(level)
    return levels


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per client, the best direct level, and ours' ratios of medians to each."""
    series = {
        client: {key: [run[key] for run in runs] for key in ("requests_per_s", "tokens_per_s")}
        for client, runs in results.items()
    }
    medians = {
        client: {key: round(statistics.median(values), 2) for key, values in rates.items()}
        for client, rates in series.items()
    }
    direct = [client for client in results if client.startswith("direct@")]
    best = max(direct, key=lambda client: statistics.median(series[client]["requests_per_s"]))
    ratios: dict[str, Any] = {}
    if "ours" in results:
        for other in [best, *(c for c in results if c != "ours" and c not in direct)]:
            name = "best_direct" if other == best else other
            ratios[name] = {
                "against": other,
                **{
                    key: ratio_of_medians(series["ours"][key], series[other][key])
                    for key in ("requests_per_s", "tokens_per_s")
                },
            }
    return {"median": medians, "best_direct": best, "ratio_of_medians": ratios}


def main() -> None:
    # A terminated benchmark stops its server too (the ``finally`` of ``llama_server``).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    binary = server_binary(args.server)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    tools = [tool for tool in args.tools.split(",") if tool]
    pythons = prepare(["direct", *tools], args.venvs)
    clients = [f"direct@{n}" for n in in_flight_levels(args.in_flight, args.slots)] + tools
    job = {
        "model": args.model.stem,
        "prompts": prompts(args.prompts),
        "max_tokens": args.max_tokens,
        "seed": 0,
        "concurrency": args.slots,  # ours: concurrency matched to the server's slots
    }
    results: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as tmp,
        llama_server(binary, args, Path(tmp) / "log") as root,
    ):
        # Unmeasured: the first run pays for cold caches (pages of the model, the server's
        # prompt cache), which no client should be charged for.
        run_once(f"direct@{args.slots}", root, job, pythons, args.venvs)
        for round_ in range(args.rounds):
            shift = round_ % len(clients)
            for client in clients[shift:] + clients[:shift]:
                run = run_once(client, root, job, pythons, args.venvs)
                results[client].append(run)
                print(
                    f"round {round_} {client:12s} {run['seconds']:6.2f} s "
                    f"{run['requests_per_s']:6.2f} req/s {run['tokens_per_s']:7.1f} tok/s "
                    f"({run['tokens']:.0f} tokens)",
                    flush=True,
                )
    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "server": {
            "binary": "llama-server (bench/llama_server/build.sh)",
            "version": (version.stdout + version.stderr).strip().splitlines()[-2:],
            "slots": args.slots,
            "threads": args.threads,
            "ctx_per_slot": args.ctx_per_slot,
        },
        "model": args.model.name,
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "versions": {tool: TOOLS.get(tool, ["datarefinery (this tree)"]) for tool in tools},
        "results": results,
        **summarize(results),
    }
    print(f"\nbest direct client: {summary['best_direct']}")
    for name, figures in summary["ratio_of_medians"].items():
        names = ("ours", figures["against"])
        for key, unit in (("requests_per_s", "req/s"), ("tokens_per_s", "tok/s")):
            print(f"ours/{name} ({unit}): {describe(figures[key], names, unit)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server_reference.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
