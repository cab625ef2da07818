#!/usr/bin/env bash
# Self-Instruct on Qwen2.5-Coder-1.5B, then every chat training format of `refinery export`, each
# loaded back with `datasets` as a trainer would.
#   bash bench/post_training/export_qwen.sh            # writes runs/post_training/export/
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-runs/post_training/export}
export PYTHONPATH=$PWD/src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
refinery() { "$PY" -m datarefinery.cli.app "$@"; }

refinery run bench/post_training/export_self_instruct_qwen.yaml -o "$OUT/run" -q --no-report --no-diversity
for format in sft-messages sharegpt alpaca; do
  refinery export "$OUT/run" -o "$OUT/$format.jsonl" --format "$format" --keep id
done
refinery export "$OUT/run" -o "$OUT/sft-messages_hf" --format sft-messages
"$PY" - "$OUT" <<'PY'
import sys
import datasets

out = sys.argv[1]
for name in ("sft-messages", "sharegpt", "alpaca"):
    rows = datasets.load_dataset("json", data_files=f"{out}/{name}.jsonl", split="train")
    print(name, rows.num_rows, "rows, columns", rows.column_names)
    print(" ", rows[0])
saved = datasets.load_from_disk(f"{out}/sft-messages_hf")
print("sft-messages_hf", saved.num_rows, "rows,", saved.features)
PY
