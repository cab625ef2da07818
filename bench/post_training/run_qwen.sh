#!/usr/bin/env bash
# Every post-training step's small run on the stronger local model, one after the other, for the
# figures in bench/README.md. Fetch the model first: python3 bench/fetch_stronger_model.py
#   bash bench/post_training/run_qwen.sh      # runs in runs/post_training/ (resumable)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/post_training}
MODEL=${MODEL:-/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
export PYTHONPATH=$PWD/src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
refinery() { "$PY" -m datarefinery.cli.app "$@"; }

for spec in preferences dialogue magpie; do
  start=$SECONDS
  refinery run "bench/post_training/${spec}_qwen.yaml" -o "$OUT/$spec" -q --no-report
  echo "$spec: $((SECONDS - start)) s wall"
done
start=$SECONDS
"$PY" bench/post_training/solve_gsm8k.py --k ${K:-10} --n ${N:-4} --threads 2 \
  --model "$MODEL" --runs "$OUT/solve"
echo "solve: $((SECONDS - start)) s wall"
start=$SECONDS
OUT="$OUT/export" PY="$PY" bash bench/post_training/export_qwen.sh
echo "export: $((SECONDS - start)) s wall"
