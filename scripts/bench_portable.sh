#!/usr/bin/env bash
# What `deterministic = "portable"` costs on CPU: quickstart steps/s in three modes, side by side,
# three alternating rounds, median and ratios (for BENCHMARKS.md).
#   default        libtorch's own choices: all cores, the CPU's widest kernels
#   threads=1      one thread, the CPU's widest kernels
#   portable       one thread, every CPU library capped at SSE4.1-era kernels
# Usage: scripts/bench_portable.sh [steps]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${1:-300}"
WARMUP=50
cd "$ROOT"
./lab build
export PATH="$ROOT/.venv/bin:$PATH"
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT
rate() { # mean img/s after warm-up, as steps/s
  python3 - "$1" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("quickstart/*"))
rates = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{sum(rates[1:]) / len(rates[1:]) / 64:.3f}")
PY
}
declare -A modes=([default]="" [threads1]="--set threads=1" [portable]="--set deterministic=\"portable\"")
declare -A rates
for round in 1 2 3; do
  for mode in default threads1 portable; do
    # shellcheck disable=SC2086
    target/release/lab run experiments/quickstart.toml --quiet --runs-dir "$runs/$mode-$round" \
      --set train.steps="$STEPS" --set log.every="$WARMUP" --set log.samples_every=0 \
      --set checkpoint.every=0 --set track.tensorboard=false ${modes[$mode]}
    rates[$mode]+="$(rate "$runs/$mode-$round") "
  done
  echo "round $round (steps/s so far): default ${rates[default]}; threads=1 ${rates[threads1]}; portable ${rates[portable]}"
done
python3 - "${rates[default]}" "${rates[threads1]}" "${rates[portable]}" <<'PY'
import statistics, sys
d, t, p = ([float(x) for x in a.split()] for a in sys.argv[1:])
md, mt, mp = statistics.median(d), statistics.median(t), statistics.median(p)
print(f"rounds: default {d}; threads=1 {t}; portable {p}")
print(f"median steps/s: default {md:.2f}, threads=1 {mt:.2f}, portable {mp:.2f}")
print(f"portable / default {mp / md:.3f}; portable / threads=1 {mp / mt:.3f}")
PY
