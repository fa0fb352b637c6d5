#!/usr/bin/env bash
# A CIFAR-scale architecture's training steps/s on this machine: `lab run` of its experiment file
# (on a random CIFAR-format set written here: the data's content does not change the cost)
# against scripts/bench_cifar_torch.py, the same networks (the plugin's own cross-check
# reference), loss, optimizers, batch, D steps, EMA and thread count in PyTorch. Three alternating
# rounds, median and ratio.
#   scripts/bench_cifar_vs_pytorch.sh ARCH [threads] [steps] [channels_last]
#     ARCH: biggan (DiffAugment's BigGAN without augmentation, its own step: 4 D steps of 50,
#           a G step, EMA), sngan_resnet, sngan_cnn or sagan (one D step then one G step at 64),
#           stylegan2 (the cifar config's own step: G then D at 64, EMA; lazy R1 on the untimed
#           first step)
#     default 2 threads, 3 steps (the first not timed); `channels_last` runs both sides with their
#     weights and batches in NHWC order (lab's `train.channels_last`, PyTorch's channels_last)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCH="${1:?usage: scripts/bench_cifar_vs_pytorch.sh ARCH [threads] [steps] [channels_last]}"
THREADS="${2:-2}"
STEPS="${3:-3}"
LAYOUT="${4:-}"
LAB="$ROOT/target/release/lab"
PY="$ROOT/.venv/bin/python"
[ -x "$LAB" ] || { echo "build first: ./lab build" >&2; exit 1; }
ONE_D_ONE_G=(--set 'train.phases=[{name="D"},{name="G"}]' --set train.batch_size=64)
case "$ARCH" in
  biggan) EXPERIMENT=diffaugment_cifar10_20pct; PLAN=(--set 'augment.name="none"'); WHAT="4 D steps of 50, G, EMA" ;;
  sngan_resnet) EXPERIMENT=zoo/sngan_resnet_cifar10; PLAN=("${ONE_D_ONE_G[@]}"); WHAT="1 D + 1 G at 64" ;;
  sngan_cnn) EXPERIMENT=zoo/sngan_cnn_cifar10; PLAN=("${ONE_D_ONE_G[@]}"); WHAT="1 D + 1 G at 64" ;;
  sagan) EXPERIMENT=zoo/sagan_cifar10; PLAN=("${ONE_D_ONE_G[@]}" --set data.hflip=false); WHAT="1 D + 1 G at 64" ;;
  stylegan2) EXPERIMENT=zoo/stylegan2_cifar10; PLAN=(--set data.hflip=false); WHAT="G then D at 64, EMA" ;;
  *) echo "unknown ARCH $ARCH: biggan, sngan_resnet, sngan_cnn, sagan or stylegan2" >&2; exit 2 ;;
esac
LAB_LAYOUT=()
PY_LAYOUT=()
if [ "$LAYOUT" = channels_last ]; then
  LAB_LAYOUT=(--set train.channels_last=true)
  PY_LAYOUT=(--channels-last)
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" "$ROOT/scripts/random_cifar.py" "$TMP" 1000
echo "== $ARCH ($EXPERIMENT: $WHAT), CPU, $THREADS thread(s), steps 2..$STEPS timed${LAYOUT:+, $LAYOUT}"
lab_rates=()
py_rates=()
for round in 1 2 3; do
  runs="$TMP/runs-$round"
  "$LAB" run "$ROOT/experiments/$EXPERIMENT.toml" --quiet --runs-dir "$runs" \
    --set "data.root=\"$TMP\"" --set data.download=false --set 'device="cpu"' --set threads="$THREADS" \
    --set train.steps="$STEPS" --set 'eval.metrics=[]' --set log.every=1 --set log.samples_every=0 \
    --set checkpoint.every=0 --set track.tensorboard=false "${PLAN[@]}" "${LAB_LAYOUT[@]}"
  # The logged time of each step's losses; the first step is warm-up.
  lab_rates+=("$("$PY" - "$runs" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("*/*"))
times = {}
for line in open(run / "metrics.jsonl"):
    row = json.loads(line)
    if row["key"] == "loss/d":
        times[row["step"]] = row["time"]
last = max(times)
print(f"{(last - 1) / (times[last] - times[1]):.4f}")
PY
)")
  py_rates+=("$("$PY" "$ROOT/scripts/bench_cifar_torch.py" --arch "$ARCH" --steps "$STEPS" --warmup 1 \
    --threads "$THREADS" "${PY_LAYOUT[@]}")")
  echo "round $round: lab ${lab_rates[-1]} steps/s, pytorch ${py_rates[-1]} steps/s"
done
python3 "$ROOT/scripts/median_ratio.py" "${lab_rates[*]}" "${py_rates[*]}"
