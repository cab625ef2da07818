"""A GDR run's figures split by outcome, beside a DIRS run's on the same records.

``refinery eval pii`` scores a method on every record; this shows where the model helped: on the
records it rewrote (``rewritten``, ``rewritten_patched``), on those that fell back to replacement
with the model's claims added (``replaced``), and on those where nothing was found
(``unchanged``). Each line scores the GDR run and the DIRS run on the same records.

    .venv/bin/python bench/pii_by_outcome.py --gold ../shared/data/presidio_pii/test.jsonl \
        runs/bench-refine/r4/pii-qwen-300/pii_rewrite runs/bench-refine/r4/pii-qwen-300/dirs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from datarefinery.evaluate.pii import read_gold, score_pii
from datarefinery.io.read import read_records
from score_partial_pii import committed

SHOWN = ("gold_pii", "token_recall", "lenient_recall", "precision", "f1", "leaks")


def outcomes(run_dir: Path) -> dict[str, str]:
    """Each committed record's ``provenance.conditioning.outcome``."""
    found: dict[str, str] = {}
    for done in sorted(run_dir.glob("steps/*/shard-*.done")):
        for record in read_records(done.with_suffix(".jsonl")):
            found[record.id] = str(record.provenance.conditioning.get("outcome"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", required=True, type=Path)
    parser.add_argument("gdr", type=Path, help="the pii_rewrite run directory")
    parser.add_argument("dirs", type=Path, help="the dirs run directory of the same records")
    args = parser.parse_args()
    gold = read_gold(args.gold)
    by_id = outcomes(args.gdr)
    gdr_texts, _ = committed(args.gdr)
    dirs_texts, _ = committed(args.dirs)
    for outcome in sorted(set(by_id.values())):
        chosen = [g for g in gold if by_id.get(g.id) == outcome]
        row: dict[str, object] = {"outcome": outcome, "records": len(chosen)}
        for name, texts in (("gdr", gdr_texts), ("dirs", dirs_texts)):
            figures = score_pii(chosen, texts)
            row[name] = {key: figures[key] for key in SHOWN}
        print(json.dumps(row))


if __name__ == "__main__":
    main()
