#!/usr/bin/env bash
# Mixed precision on this machine: the quickstart (DCGAN 28×28, batch 64) trained by `lab` in
# fp32 and bf16 (`train.amp`), and fp16 with a third argument `fp16`, three alternating rounds,
# median steps/s and the ratio to fp32. What 16-bit autocast buys on a CPU depends on its native
# support (AVX512-BF16, AVX512-FP16/AMX); without it the casts cost more than they save. fp16 is
# left out by default because CPUs without native fp16 run it many times slower.
#   scripts/bench_amp.sh [threads] [steps] [fp16]   # default 1 thread, 250 steps (the first 50 not timed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-1}"
STEPS="${2:-250}"
PRECISIONS=(false '"bf16"')
[ "${3:-}" = fp16 ] && PRECISIONS+=('"fp16"')
WARMUP=50
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LAB="$ROOT/target/release/lab"
[ -x "$LAB" ] || { echo "build first: ./lab build" >&2; exit 1; }
echo "== quickstart DCGAN, CPU, $THREADS thread(s), steps $WARMUP..$STEPS timed"
declare -A rates
for round in 1 2 3; do
  for amp in "${PRECISIONS[@]}"; do
    runs="$TMP/$round-${amp//\"/}"
    "$LAB" run "$ROOT/experiments/quickstart.toml" --quiet --runs-dir "$runs" --set 'device="cpu"' \
      --set threads="$THREADS" --set train.steps="$STEPS" --set log.every="$WARMUP" --set log.samples_every=0 \
      --set checkpoint.every=0 --set track.tensorboard=false --set "train.amp=$amp"
    rate="$(python3 - "$runs" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("quickstart/*"))
rates = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{sum(rates[1:]) / len(rates[1:]) / 64:.3f}")
PY
)"
    rates[$amp]+="$rate "
    echo "round $round: amp=$amp $rate steps/s"
  done
done
python3 - "${rates[false]}" "${rates['"bf16"']}" ${rates['"fp16"']:+"${rates['"fp16"']}"} <<'PY'
import statistics, sys
names = ["fp32", "bf16", "fp16"]
medians = [statistics.median(float(x) for x in arg.split()) for arg in sys.argv[1:]]
for name, m in zip(names, medians):
    print(f"median {name}: {m:.3f} steps/s, {m / medians[0]:.3f} × fp32")
PY
