"""Re-derive ``pii_rewrite``'s preservation gate on the presidio_pii VALIDATION split (issue 12,
item 3). The test split is never read here.

Phase ``run``: ``pii_rewrite`` with the gate off (``max_edits: {tokens: 10**9}``,
``max_reasks: 0``) on (a) a seeded sample of validation records and (b) long texts made by
joining validation records into paragraphs of 1,500-3,000 characters (gold spans shifted with
them), so every record keeps the model's first rewrite, whatever it changed. Runs resume
(``refinery run`` semantics).

Phase ``analyse``: for every rewritten record, several measures of change outside the PII spans,
computed as the step can (from x, y and the replacements, no gold), and the record's gold-scored
changes. A gate keeps the rewrite when the measure passes, else uses the fallback (x with its spans
replaced by their surrogates, which is what the step emits on ``changed_too_much``). Printed: token
recall, precision and F1 on the gold spans for each measure and threshold, next to no gate and
always-fallback.

    .venv/bin/python bench/pii_gate/derive.py run --tag smollm2 --limit 305 --long 24
    .venv/bin/python bench/pii_gate/derive.py run --tag qwen --limit 60 --long 8 --threads 1 \
        --model /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    .venv/bin/python bench/pii_gate/derive.py analyse --tag smollm2 --tag qwen
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from datarefinery.evaluate.pii import GoldRecord, GoldSpan, read_gold, score_pii
from datarefinery.io.read import read_records
from datarefinery.loop.refine_eval import REFINE_LLM, run_method, sample_ids
from datarefinery.steps.refine.checks import changed_outside, delta
from datarefinery.steps.refine.surrogates import Replacement, apply_replacements
from datarefinery.text import words_and_marks

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "presidio_pii"
WORK = ROOT / "runs" / "bench-pii-gate"
RESULTS = ROOT / "bench" / "results"


def long_texts(gold: list[GoldRecord], count: int, seed: int) -> list[GoldRecord]:
    """``count`` paragraphs of 1,500-3,000 characters, each validation records joined by spaces."""
    rng = random.Random(seed)
    pool = list(gold)
    made = []
    for n in range(count):
        target = rng.randint(1500, 3000)
        text, spans = "", []
        while len(text) < target:
            piece = rng.choice(pool)
            offset = len(text) + (1 if text else 0)
            text = f"{text} {piece.text}" if text else piece.text
            spans += [
                GoldSpan(s.entity_type, s.start + offset, s.end + offset, s.value)
                for s in piece.spans
            ]
        made.append(GoldRecord(f"long-{n}", text, tuple(spans)))
    return made


def _write_gold(records: list[GoldRecord], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for g in records:
            spans = [s.__dict__ for s in g.spans]
            out.write(json.dumps({"id": g.id, "text": g.text, "spans": spans}) + "\n")


def run(args: argparse.Namespace) -> None:
    gold = read_gold(DATA / "validation.jsonl")
    chosen = sample_ids([g.id for g in gold], args.limit, 0)
    records = [g for g in gold if g.id in chosen] + long_texts(gold, args.long, 0)
    work = WORK / args.tag
    work.mkdir(parents=True, exist_ok=True)
    _write_gold(records, work / "gold.jsonl")
    (work / "input.jsonl").write_text(
        "".join(json.dumps({"id": g.id, "text": g.text}) + "\n" for g in records)
    )
    llm = {**REFINE_LLM, "n_threads": args.threads, "parallel": args.parallel}
    if args.model:
        llm["model"] = args.model
    step = {"pii_rewrite": {"max_edits": {"tokens": 10**9}, "max_reasks": 0}}
    result, _ = run_method(step, work / "input.jsonl", work / "run", llm=llm, seed=0)
    print(result.status, result.dataset_path)


def features(tag: str) -> list[dict[str, Any]]:
    """One row per record: its gold, the rewrite, the fallback, and the measures."""
    work = WORK / tag
    gold = {g.id: g for g in read_gold(work / "gold.jsonl")}
    rows = []
    # The committed shards (the run's records so far): an unfinished run can be looked at too.
    shards = sorted((work / "run" / "steps").glob("*/shard-*[0-9].jsonl"))
    for record in (r for shard in shards for r in read_records(shard)):
        g = gold[record.id]
        cond = record.provenance.conditioning
        plan = [
            Replacement(
                r["entity_type"],
                r["start"],
                r["end"],
                g.text[r["start"] : r["end"]],
                r["replacement"],
                r.get("detector", ""),
            )
            for r in cond.get("replaced", [])
            if r["start"] >= 0
        ]
        y = str(record.fields["text"])
        fallback = apply_replacements(g.text, plan)
        changed, outside = changed_outside(g.text, y, plan)
        pii_tokens = sum(len(words_and_marks(r.original)) for r in plan)
        rows.append(
            {
                "id": g.id,
                "outcome": cond.get("outcome"),
                "chars": len(g.text),
                "rewrite": y,
                "fallback": fallback,
                "f1_bag": delta(g.text, y, plan)["token_f1_outside_pii"],
                "changed": changed,
                "outside": outside,
                "pii_tokens": pii_tokens,
            }
        )
    return rows


def _gate_score(
    rows: list[dict[str, Any]], gold: dict[str, GoldRecord], keep: Any
) -> dict[str, Any]:
    outputs = {r["id"]: (r["rewrite"] if keep(r) else r["fallback"]) for r in rows}
    kept = sum(1 for r in rows if keep(r))
    s = score_pii([gold[i] for i in outputs], outputs)
    return {"kept": kept, "recall": s["token_recall"], "precision": s["precision"], "f1": s["f1"]}


def analyse(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {}
    for tag in args.tag:
        gold = {g.id: g for g in read_gold(WORK / tag / "gold.jsonl")}
        rows = [r for r in features(tag) if r["outcome"] in ("rewritten", "rewritten_patched")]
        table: dict[str, Any] = {}
        for part, chosen in (
            ("short", [r for r in rows if not r["id"].startswith("long-")]),
            ("long", [r for r in rows if r["id"].startswith("long-")]),
        ):
            if not chosen:
                continue
            lines = {
                "no gate": _gate_score(chosen, gold, lambda r: True),
                "always fallback": _gate_score(chosen, gold, lambda r: False),
            }
            for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
                lines[f"f1_bag>={t}"] = _gate_score(chosen, gold, lambda r, t=t: r["f1_bag"] >= t)
            for share in (0.0, 0.02, 0.05, 0.1, 0.2):
                for slack in (0, 1, 2, 3):
                    lines[f"changed<={slack}+{share}*outside"] = _gate_score(
                        chosen,
                        gold,
                        lambda r, s=share, k=slack: r["changed"] <= k + s * r["outside"],
                    )
            for per in (0.05, 0.1, 0.2, 0.3):
                for slack in (0, 1, 2, 3):
                    lines[f"changed<={slack}+{per}*pii"] = _gate_score(
                        chosen,
                        gold,
                        lambda r, p=per, k=slack: r["changed"] <= k + p * r["pii_tokens"],
                    )
            table[part] = {"records": len(chosen), "gates": lines}
            print(f"\n## {tag} {part} ({len(chosen)} rewritten records)")
            for name, v in lines.items():
                print(
                    f"{name:32s} kept {v['kept']:4d}  R {v['recall']:.4f}  "
                    f"P {v['precision']:.4f}  F1 {v['f1']:.4f}"
                )
        report[tag] = table
    (RESULTS / "pii_gate_validation.json").write_text(json.dumps(report, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    r = sub.add_parser("run")
    r.add_argument("--tag", required=True)
    r.add_argument("--limit", type=int, default=305)
    r.add_argument("--long", type=int, default=24)
    r.add_argument("--model", default="")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--parallel", type=int, default=4)
    a = sub.add_parser("analyse")
    a.add_argument("--tag", action="append", required=True)
    args = parser.parse_args()
    run(args) if args.phase == "run" else analyse(args)


if __name__ == "__main__":
    main()
