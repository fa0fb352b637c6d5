#!/usr/bin/env bash
# Benchmarks for BENCHMARKS.md, run side by side on this machine:
#  1. DCGAN training steps/s on CPU: `lab` (the quickstart experiment) vs the equivalent PyTorch
#     script (scripts/bench_dcgan.py), same architecture, batch size and thread count;
#  2. the cost of the plugin boundary: one forward through a dlopen'ed plugin vs in-process.
# Usage: scripts/bench.sh [threads] [steps]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-1}"
STEPS="${2:-300}"
WARMUP=50
cd "$ROOT"
./lab build
export LIBTORCH_USE_PYTORCH=1 PATH="$ROOT/.venv/bin:$PATH"
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT

echo "== DCGAN (quickstart architecture, batch 64, 28x28), CPU, $THREADS thread(s), steps $WARMUP..$STEPS timed"
lab_rates=()
py_rates=()
for round in 1 2 3; do
  target/release/lab run experiments/quickstart.toml --quiet --runs-dir "$runs/$round" \
    --set threads="$THREADS" --set train.steps="$STEPS" --set log.every="$WARMUP" \
    --set log.samples_every=0 --set checkpoint.every=0 --set track.tensorboard=false
  # Mean img/s over the logging intervals after warm-up, as steps/s.
  lab_rates+=("$(python3 - "$runs/$round" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("quickstart/*"))
rates = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{sum(rates[1:]) / len(rates[1:]) / 64:.3f}")
PY
)")
  py_rates+=("$(.venv/bin/python scripts/bench_dcgan.py --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")")
  echo "round $round: lab ${lab_rates[-1]} steps/s, pytorch ${py_rates[-1]} steps/s"
done
python3 "$ROOT/scripts/median_ratio.py" "${lab_rates[*]}" "${py_rates[*]}"

echo "== plugin boundary"
cargo run --release --quiet --example plugin_overhead
