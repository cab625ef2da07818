#!/usr/bin/env bash
# The S3 paper's Table 2 (`refinery experiment s3`): gold, ZeroGen, GoldGen and S3 at one record
# budget, each a small model measured on the real test split; with --repeats, mean ± sd over run
# seeds, and the data-efficiency view (test accuracy against records).
#
# Every command is resumable: rerun it after an interruption (or in the next session) and finished
# rounds and answered model calls are reused (runs/bench-s3/...). Each session's start and end are
# appended to OUT/wall.log: the wall time is the sum of its sessions.
#
# Issue 13's measurements, with the stronger local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M; fetch
# it first with `python3 bench/fetch_stronger_model.py`) and embedding-lr as the small model:
#   bash bench/s3_experiment.sh qwen-imdb             IMDb, 200 records per method, 3 repeats
#   bash bench/s3_experiment.sh qwen-imdb-ablations   IMDb, S3 vs its two ablations, 1 repeat (same
#                                                     folder and cache: seed_only reuses S3's seeds)
#   bash bench/s3_experiment.sh qwen-rte              RTE, 100 records per method, 3 repeats
#                                                     (REPEATS=1 if time is short: say so)
#   bash bench/s3_experiment.sh qwen-all              the three, in that order
#   bash bench/s3_experiment.sh qwen-qa               AdversarialQA (extractive QA, SQuAD F1 / EM):
#                                                     gold (the 500 validation questions), ZeroGen,
#                                                     GoldGen, S3 at 150 questions per method, 1
#                                                     repeat, first 1000 test questions; the span
#                                                     model is the fine-tuned MiniLM. 61 minutes
#                                                     here on 2026-12-03 (~300 Qwen calls, as S3's
#                                                     seed set is ZeroGen's first half from the
#                                                     cache, plus 7 span-model rounds)
# Roughly 4 s per record with this model on the shared 2-core box: hours; start early.
#
# The first small-budget tables (issue 6), embedded SmolLM2-135M, tf-idf + LR:
#   bash bench/s3_experiment.sh imdb                  40 records per method (about 30 minutes)
#   BUDGET=32 bash bench/s3_experiment.sh rte         same on RTE
#
# Settings (environment): DATA (the shared data folder), MODEL (the Qwen GGUF), SMALL_MODEL
# (embedding-lr), REPEATS (3), ROUNDS (2), K (2), PARALLEL (4), THREADS (all cores), TEST_LIMIT
# (the whole test split; give n when it is set; qwen-qa: 1000), BUDGET (per mode above), QA_REPEATS
# (1, qwen-qa).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
[ -d "$DATA" ] || DATA=/work/shared/data
MODEL=${MODEL:-/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
SMALL_MODEL=${SMALL_MODEL:-embedding-lr}
REPEATS=${REPEATS:-3}
ROUNDS=${ROUNDS:-2}
K=${K:-2}
PARALLEL=${PARALLEL:-4}
R=bench/results
W=runs/bench-s3
mkdir -p "$R" "$W"

# experiment OUT RESULT_NAME ARGS...: run (or resume) into OUT, then keep its table as RESULT_NAME.
experiment() {
  local out=$1 result=$2
  shift 2
  local extra=()
  [ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")
  [ -n "${TEST_LIMIT:-}" ] && extra+=(--test-limit "$TEST_LIMIT")
  mkdir -p "$out"
  echo "start $(date -u +%FT%TZ) $*" >>"$out/wall.log"
  .venv/bin/refinery experiment s3 "$@" --rounds "$ROUNDS" --k "$K" --parallel "$PARALLEL" \
    ${extra[@]+"${extra[@]}"} -o "$out"
  echo "end   $(date -u +%FT%TZ)" >>"$out/wall.log"
  cp "$out/table.json" "$R/$result.json"
  cp "$out/table.md" "$R/$result.md"
}

need_model() {
  if [ ! -f "$MODEL" ]; then
    echo "no model at $MODEL: run python3 bench/fetch_stronger_model.py (or set MODEL)" >&2
    exit 2
  fi
}

qwen_imdb() {
  local budget=${BUDGET:-200}
  experiment "$W/qwen-imdb-$budget" "s3_imdb_qwen_$budget" --data "$DATA/imdb" \
    --budget "$budget" --repeats "$REPEATS" --small-model "$SMALL_MODEL" --model "$MODEL" \
    --methods gold,zerogen,goldgen,s3
}

qwen_imdb_ablations() {
  local budget=${BUDGET:-200}
  # The same folder as qwen-imdb: seed 0's S3 run is reused as it is, and seed_only's seed set
  # comes from the shared cache. This rewrites OUT/table.*; rerun qwen-imdb (no model calls) to
  # get its table back.
  experiment "$W/qwen-imdb-$budget" "s3_imdb_qwen_${budget}_ablations" --data "$DATA/imdb" \
    --budget "$budget" --repeats 1 --small-model "$SMALL_MODEL" --model "$MODEL" \
    --methods gold,s3,s3_no_rationale,seed_only
}

qwen_rte() {
  local budget=${BUDGET:-100}
  experiment "$W/qwen-rte-$budget" "s3_rte_qwen_$budget" --data "$DATA/rte" \
    --budget "$budget" --repeats "$REPEATS" --small-model "$SMALL_MODEL" --model "$MODEL" \
    --methods gold,zerogen,goldgen,s3
}

qwen_qa() {
  local budget=${BUDGET:-150}
  # the QA preset trains the span model (--small-model is left out); TEST_LIMIT is given here,
  # so n is in the table: n=1000 of the 2000 test questions unless set
  TEST_LIMIT=${TEST_LIMIT:-1000} experiment "$W/qwen-qa-$budget" "s3_adversarial_qa_qwen_$budget" \
    --data "$DATA/adversarial_qa" --budget "$budget" --repeats "${QA_REPEATS:-1}" \
    --model "$MODEL" --methods gold,zerogen,goldgen,s3
}

mode=${1:-imdb}
case "$mode" in
  qwen-imdb) need_model; qwen_imdb ;;
  qwen-imdb-ablations) need_model; qwen_imdb_ablations ;;
  qwen-rte) need_model; qwen_rte ;;
  qwen-all) need_model; qwen_imdb; qwen_imdb_ablations; qwen_rte ;;
  qwen-qa) need_model; qwen_qa ;;
  imdb | rte | qnli)
    # issue 6's settings: one run seed, tf-idf + LR, the embedded default model
    budget=${BUDGET:-40}
    experiment "$W/$mode-$budget" "s3_${mode}_${budget}" --data "$DATA/$mode" \
      --budget "$budget" --small-model tfidf-lr
    ;;
  *)
    echo "usage: bash bench/s3_experiment.sh qwen-imdb|qwen-imdb-ablations|qwen-rte|qwen-all|qwen-qa|imdb|rte|qnli" >&2
    exit 2
    ;;
esac
