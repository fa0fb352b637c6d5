#!/usr/bin/env bash
# FID over N generated vs N reference images on CPU, side by side with the same feature network:
# `lab eval --metrics fid` (device-side float64 eigh, no reference cache) against
# scripts/bench_fid.py (PyTorch features + numpy moments + scipy.linalg.sqrtm).
# Usage: scripts/bench_fid.sh FEATURES.pt [N]   (FEATURES: e.g. from `./lab features train`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEATURES="$1"
N="${2:-10000}"
cd "$ROOT"
./lab build
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# A quickstart-shaped run to evaluate (2 steps: the cost of FID does not depend on training).
target/release/lab run experiments/quickstart.toml --quiet --runs-dir "$tmp/runs" --set train.steps=2 \
  --set log.samples_every=0 --set threads=2
run="$(ls -d "$tmp"/runs/quickstart/*)"
for round in 1 2 3; do
  start=$(date +%s.%N)
  LAB_CACHE="$tmp/cache-$round" target/release/lab eval "$run" --metrics fid --num-samples "$N" \
    --set eval.reference_count="$N" --set eval.features="\"$FEATURES\"" --set eval.batch_size=100 > "$tmp/lab.out"
  end=$(date +%s.%N)
  lab_s=$(python3 -c "print(f'{$end - $start:.2f}')")
  py=$(.venv/bin/python scripts/bench_fid.py --features "$FEATURES" --n "$N" --threads 2)
  echo "round $round: lab $lab_s s ($(grep '^fid:' "$tmp/lab.out")), pytorch+scipy ${py% *} s (fid ${py#* })"
done
