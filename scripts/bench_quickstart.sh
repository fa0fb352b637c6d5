#!/usr/bin/env bash
# One training setting against others on this machine: the quickstart (DCGAN 28×28, batch 64)
# trained by `lab` once per setting, three alternating rounds, median steps/s and each setting's
# ratio to the first. Settings are `--set` values (`train.amp="bf16"`, `train.channels_last=true`);
# the first is the baseline (`-` for the defaults).
#   scripts/bench_quickstart.sh [threads] [steps] [setting]...
#     default: 1 thread, 250 steps (the first 50 not timed), `-` against `train.amp="bf16"`
#   scripts/bench_quickstart.sh 1 150 - 'train.amp="bf16"'            # mixed precision
#   scripts/bench_quickstart.sh 1 150 - train.channels_last=true      # memory layout
# What 16-bit autocast buys on a CPU depends on its native support (AVX512-BF16, AVX512-FP16/AMX):
# without it the casts cost more than they save, and fp16 runs many times slower than fp32.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-1}"
STEPS="${2:-250}"
shift $(($# < 2 ? $# : 2))
SETTINGS=("$@")
[ ${#SETTINGS[@]} -gt 0 ] || SETTINGS=(- 'train.amp="bf16"')
WARMUP=50
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LAB="$ROOT/target/release/lab"
[ -x "$LAB" ] || { echo "build first: ./lab build" >&2; exit 1; }
echo "== quickstart DCGAN, CPU, $THREADS thread(s), steps $WARMUP..$STEPS timed"
rates=()
for round in 1 2 3; do
  for i in "${!SETTINGS[@]}"; do
    setting="${SETTINGS[$i]}"
    runs="$TMP/$round-$i"
    extra=()
    [ "$setting" = - ] || extra=(--set "$setting")
    "$LAB" run "$ROOT/experiments/quickstart.toml" --quiet --runs-dir "$runs" --set 'device="cpu"' \
      --set threads="$THREADS" --set train.steps="$STEPS" --set log.every="$WARMUP" --set log.samples_every=0 \
      --set checkpoint.every=0 --set track.tensorboard=false "${extra[@]}"
    rate="$(python3 - "$runs" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("quickstart/*"))
rates = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{sum(rates[1:]) / len(rates[1:]) / 64:.3f}")
PY
)"
    rates[$i]+="$rate "
    echo "round $round: $setting $rate steps/s"
  done
done
python3 - "${SETTINGS[@]}" -- "${rates[@]}" <<'PY'
import statistics, sys
split = sys.argv.index("--")
names, series = sys.argv[1:split], sys.argv[split + 1:]
medians = [statistics.median(float(x) for x in s.split()) for s in series]
for name, s, m in zip(names, series, medians):
    print(f"median {name}: {m:.3f} steps/s (rounds {s.strip()}), {m / medians[0]:.3f} × {names[0]}")
PY
