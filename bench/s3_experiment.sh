#!/usr/bin/env bash
# The S3 paper's Table 2 at a small record budget (issue 6): gold, ZeroGen, GoldGen and S3, each a
# tf-idf + logistic-regression small model measured on the real test split.
# Each line is resumable: rerun it after an interruption and finished rounds and answered model
# calls are reused (runs/bench-s3/...).
#   bash bench/s3_experiment.sh imdb   embedded SmolLM2-135M, 40 records per method (about 30 minutes on the shared 2-core box)
#   BUDGET=32 bash bench/s3_experiment.sh rte   same on RTE (hypotheses for validation premises)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
[ -d "$DATA" ] || DATA=/work/shared/data
BUDGET=${BUDGET:-40}
R=bench/results
W=runs/bench-s3
mkdir -p "$R" "$W"
name=${1:-imdb}
.venv/bin/refinery experiment s3 --data "$DATA/$name" --budget "$BUDGET" --rounds 2 --k 2 \
  --parallel 4 -o "$W/$name-$BUDGET"
cp "$W/$name-$BUDGET/table.json" "$R/s3_${name}_${BUDGET}.json"
cp "$W/$name-$BUDGET/table.md" "$R/s3_${name}_${BUDGET}.md"
