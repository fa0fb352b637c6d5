#!/usr/bin/env bash
# CPU seconds per training step of the CIFAR-scale architectures at their paper widths, batch 64,
# through `lab run` on a random CIFAR-format set written here (the data's content does not change
# the cost). Two plans per architecture: its experiment's own step (SNGAN's ResNet: G on 128
# generated images then 5 D steps of 64; BigGAN: 4 D steps then G, at batch 64 instead of the
# experiment's 50), and one D step then one G step at batch 64, the unit that compares them (the
# CNN's and SAGAN's own steps are already that).
#   scripts/bench_cifar_zoo.sh [steps] [only]   # steps: default 5, the first 2 are warm-up, not
#                                               # timed; only: the runs whose "experiment plan" has it
# Prints one line per run: experiment, plan, seconds per step, steps/s, the load average before.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${1:-5}"
ONLY="${2:-}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LAB="$ROOT/target/release/lab"
[ -x "$LAB" ] || { echo "build first: ./lab build" >&2; exit 1; }

"$ROOT/.venv/bin/python" "$ROOT/scripts/random_cifar.py" "$TMP"

bench() {  # experiment, plan label, extra --set values...
  local exp="$1" plan="$2"; shift 2
  [[ "$exp $plan" == *"$ONLY"* ]] || return 0
  local runs="$TMP/runs-$RANDOM" load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  local args=(run "$ROOT/experiments/$exp.toml" --quiet --runs-dir "$runs"
    --set "data.root=\"$TMP\"" --set data.download=false --set 'device="cpu"'
    --set "train.steps=$STEPS" --set train.batch_size=64 --set 'eval.metrics=[]'
    --set log.every=1 --set log.samples_every=0 --set checkpoint.every=0)
  for s in "$@"; do args+=(--set "$s"); done
  "$LAB" "${args[@]}" >/dev/null
  "$ROOT/.venv/bin/python" - "$runs" "$exp" "$plan" "$load" <<'EOF'
import glob, json, sys
runs, exp, plan, load = sys.argv[1:]
path = glob.glob(f"{runs}/*/*/metrics.jsonl")[0]
times = {}
for line in open(path):
    row = json.loads(line)
    if row["key"] == "loss/d":
        times[row["step"]] = row["time"]
last = max(times)
per_step = (times[last] - times[2]) / (last - 2)
print(f"{exp:32s} {plan:34s} {per_step:7.2f} s/step  {1 / per_step:6.3f} steps/s  (load {load})")
EOF
}

ONE_D_ONE_G='train.phases=[{name="D"},{name="G"}]'
bench zoo/sngan_resnet_cifar10 "official: G(128), 5 x D(64)"
bench zoo/sngan_resnet_cifar10 "1 D + 1 G at 64" "$ONE_D_ONE_G"
bench zoo/sngan_cnn_cifar10 "official: G(64), 1 x D(64)"
bench zoo/wgan_gp_resnet_cifar10 "official: G(128), 5 x D(64) + GP"
bench zoo/wgan_gp_resnet_cifar10 "1 D + 1 G at 64" "$ONE_D_ONE_G"
bench biggan_cifar10_100pct "4 x D(64), G(64), EMA"
bench biggan_cifar10_100pct "1 D + 1 G at 64" train.d_steps=1
bench zoo/sagan_cifar10 "its own: D(64), G(64), conditional"
# G then D at 64 (R1 and G_pl are lazy: step 0 only, which is not timed).
bench zoo/stylegan2_cifar10 "its own: G(64), D(64), conditional"
