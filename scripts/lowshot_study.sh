#!/usr/bin/env bash
# The low-shot DiffAugment study (experiments/fashion_mnist_lowshot.toml): five arms x three
# seeds, as two queues of runs, one per core. The arms set different keys (a DiffAugment policy,
# ADA's config, `augment.apply`), so each is its own sweep, with its own sweep folder.
#   scripts/lowshot_study.sh                 # all 15 runs, then: ./lab report reports/fashion_mnist_lowshot.toml
#   LAB=target/release/lab scripts/lowshot_study.sh   # an already built binary instead of ./lab
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LAB="${LAB:-$ROOT/lab}"
EXPERIMENT=experiments/fashion_mnist_lowshot.toml
TC='"translation,cutout"'
CTC='"color,translation,cutout"'

# arm <sweep folder> <seeds> <sweep arguments...>
arm() {
  local folder="$1" seeds="$2"
  shift 2
  "$LAB" sweep "$EXPERIMENT" --jobs 1 --seeds "$seeds" --sweep-dir "sweeps/fashion_mnist_lowshot/$folder" "$@"
}

start=$(date +%s)
# Eight runs and seven: the baseline and DiffAugment (T, C) first, so that the main comparison
# is complete earliest.
(
  arm none 0,1,2 --grid augment.name=none
  arm diffaugment_ctc 0,1,2 --set 'augment.name="diffaugment"' --grid "augment.config.policy=$CTC"
  arm reals_only_a 0,1 --set 'augment.name="diffaugment"' --set "augment.config.policy=$TC" --grid augment.apply=reals
) &
first=$!
(
  arm diffaugment_tc 0,1,2 --set 'augment.name="diffaugment"' --grid "augment.config.policy=$TC"
  # ADA's p may move by 1 in 100k real images: the paper's 500k would let it reach only 0.38 in
  # this study's 192k.
  arm ada 0,1,2 --grid augment.name=ada --set augment.config.adjust_kimg=100
  arm reals_only_b 2 --set 'augment.name="diffaugment"' --set "augment.config.policy=$TC" --grid augment.apply=reals
) &
second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
echo "low-shot study: $(( ($(date +%s) - start) / 60 )) min, exit $status"
exit "$status"
