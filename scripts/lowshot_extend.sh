#!/usr/bin/env bash
# The low-shot study's long schedule: the baseline and DiffAugment (translation, cutout) runs of
# scripts/lowshot_study.sh, continued from their last checkpoint (step 6,000) to `STEPS`
# (default 12,000). Each run folder is copied to runs_long/ first and resumed there, so the
# 6,000-step study stays as it was; the first 6,000 steps of a continued run are the study's run.
#   scripts/lowshot_extend.sh            # after scripts/lowshot_study.sh; six runs, one at a time
#   ./lab report reports/fashion_mnist_lowshot_long.toml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LAB="${LAB:-$ROOT/lab}"
STEPS="${STEPS:-12000}"
SEEDS="${SEEDS:-0 1 2}"
for seed in $SEEDS; do
  for member in "augment.name=none__seed=$seed" "augment.config.policy=translation_cutout__seed=$seed"; do
    group="fashion_mnist_lowshot__$member"
    source_run=$(ls -d "runs/$group"/*/ 2>/dev/null | tail -n 1)
    if [ -z "$source_run" ] || ! grep -q '"status": *"finished"' "$source_run/summary.json" 2>/dev/null; then
      echo "lowshot_extend: runs/$group has no finished run; run scripts/lowshot_study.sh first" >&2
      exit 1
    fi
    run="runs_long/$group/$(basename "$source_run")"
    if [ ! -d "$run" ]; then
      mkdir -p "runs_long/$group"
      cp -r "$source_run" "$run"
    fi
    # A finished continuation is left alone; an interrupted one resumes from its own checkpoint.
    if grep -q "\"steps\": *$STEPS" "$run/summary.json" 2>/dev/null; then
      echo "lowshot_extend: $run already has $STEPS steps"
      continue
    fi
    "$LAB" run --resume "$run" --set "train.steps=$STEPS"
  done
done
