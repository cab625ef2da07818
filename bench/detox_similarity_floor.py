"""Derive ``detox_rewrite``'s ``min_similarity`` default from the reserved ParaDetox slice.

The cosine check is a cheap floor under the meaning judge: it should stop rewrites that drifted
off topic, not polite paraphrases. Human neutral references are polite paraphrases by
construction, so the floor is set where it stops about 5 % of them. Only the reserved rows
(the ``eval detox`` reserve: 300 ids with the lowest sha256 of seed and id) are read; the
measured rows are not.

    PYTHONPATH=src .venv/bin/python bench/detox_similarity_floor.py \
        --out bench/results/detox_similarity_floor.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from datarefinery.embeddings import Embedder, cosine
from datarefinery.evaluate.toxicity_scorers import RESERVE_SEED, RESERVE_SIZE, reserve_split
from datarefinery.loop.detox_eval import read_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="../shared/data/paradetox/test.jsonl")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = read_pairs(args.pairs)
    reserved, _ = reserve_split([i for i, _, _ in rows], RESERVE_SIZE, RESERVE_SEED)
    keep = set(reserved)
    pairs = [(toxic, ref) for i, toxic, refs in rows if i in keep for ref in refs]
    embedder = Embedder()
    sims = cosine(embedder.encode([a for a, _ in pairs]), embedder.encode([b for _, b in pairs]))
    result = {
        "pairs": args.pairs,
        "reserved_rows": len(keep),
        "reference_pairs": len(pairs),
        "embedder": "all-MiniLM-L6-v2 (datarefinery.embeddings.Embedder)",
        "percentiles": {str(p): round(float(np.percentile(sims, p)), 3) for p in (5, 10, 20, 50)},
        "references_stopped_at": {
            str(t): round(float((sims < t).mean()), 3) for t in (0.4, 0.45, 0.5, 0.6)
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
