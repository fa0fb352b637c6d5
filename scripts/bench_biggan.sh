#!/usr/bin/env bash
# BigGAN-CIFAR training steps/s on this machine: `lab` (experiments/diffaugment_cifar10_20pct.toml
# with augmentation off, on a random CIFAR-format set written here: the data's content does not
# change the cost) against scripts/bench_biggan.py, the same network, loss, optimizers, batch,
# D steps, EMA and thread count in PyTorch. Three alternating rounds, median and ratio.
#   scripts/bench_biggan.sh [threads] [steps] [channels_last]
#     default 2 threads, 3 steps (the first not timed); `channels_last` runs both sides with their
#     weights and batches in NHWC order (lab's `train.channels_last`, PyTorch's channels_last)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-2}"
STEPS="${2:-3}"
LAYOUT="${3:-}"
LAB_LAYOUT=()
PY_LAYOUT=()
if [ "$LAYOUT" = channels_last ]; then
  LAB_LAYOUT=(--set train.channels_last=true)
  PY_LAYOUT=(--channels-last)
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LAB="$ROOT/target/release/lab"
PY="$ROOT/.venv/bin/python"
[ -x "$LAB" ] || { echo "build first: ./lab build" >&2; exit 1; }
"$PY" "$ROOT/scripts/random_cifar.py" "$TMP" 1000
echo "== BigGAN-CIFAR (G_ch = D_ch = 64, batch 50, 4 D steps + 1 G step + EMA), CPU, $THREADS thread(s), steps 2..$STEPS timed${LAYOUT:+, $LAYOUT}"
lab_rates=()
py_rates=()
for round in 1 2 3; do
  runs="$TMP/runs-$round"
  "$LAB" run "$ROOT/experiments/diffaugment_cifar10_20pct.toml" --quiet --runs-dir "$runs" \
    --set "data.root=\"$TMP\"" --set data.download=false --set 'device="cpu"' --set threads="$THREADS" \
    --set train.steps="$STEPS" --set 'augment.name="none"' --set 'eval.metrics=[]' \
    --set log.every=1 --set log.samples_every=0 --set checkpoint.every=0 --set track.tensorboard=false \
    "${LAB_LAYOUT[@]}"
  # perf/img_per_s counts D's real images (4 × 50 a step); the first step is warm-up.
  lab_rates+=("$("$PY" - "$runs" <<'PY'
import json, pathlib, statistics, sys
run = next(pathlib.Path(sys.argv[1]).glob("*/*"))
rates = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{1 / statistics.mean(200 / r for r in rates[1:]):.4f}")
PY
)")
  py_rates+=("$("$PY" "$ROOT/scripts/bench_biggan.py" --steps "$STEPS" --warmup 1 --threads "$THREADS" "${PY_LAYOUT[@]}")")
  echo "round $round: lab ${lab_rates[-1]} steps/s, pytorch ${py_rates[-1]} steps/s"
done
python3 "$ROOT/scripts/median_ratio.py" "${lab_rates[*]}" "${py_rates[*]}"
