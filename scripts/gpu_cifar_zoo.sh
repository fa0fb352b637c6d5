#!/usr/bin/env bash
# Throughput of the CIFAR-scale experiments on a GPU: each experiment as its file sets it (its
# widths, batch size and phases), for a number of steps on a random CIFAR-format set written here
# (the pixels' content does not change a step's cost), with evaluation, pictures and checkpoints
# off. The GPU machine has no Rust toolchain, so the binary and its plugins are built here and
# travel as one folder:
#   scripts/gpu_cifar_zoo.sh bundle                      # here: target/gpu-bundle = lab + plugins
#   scripts/gpu_cifar_zoo.sh run [steps] [seconds] [only] # there: default 2000 steps, each run
#                                                         # cut at 120 s; only: a name filter
# `run` finds libtorch in the machine's own PyTorch (`python3 -c 'import torch'`; the bundle's
# rpath points at this checkout's .venv, which does not travel), names the GPU, and prints a
# Markdown table (also written to $OUT/gpu_cifar_zoo.md when $OUT is set): per experiment the
# steps done, the median seconds per step over the logged intervals after the first (warm-up,
# cuDNN autotuning) and the trainer's `perf/img_per_s` (every image a step draws, real or
# generated, as logged) as a median over the same intervals. A run cut by the time limit still
# reports the intervals it logged (LOG_EVERY steps each, default 20). DEVICE=cpu runs the same on
# a CPU (used to test the script).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/target/gpu-bundle"
MODE="${1:-}"

if [ "$MODE" = bundle ]; then
  [ -x "$ROOT/target/release/lab" ] || { echo "build first: ./lab build" >&2; exit 1; }
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE"
  # lab loads the plugins that sit next to its binary first, so one folder carries both.
  cp "$ROOT/target/release/lab" "$ROOT"/target/release/liblab_plugin_*.so "$BUNDLE/"
  echo "$BUNDLE: $(du -sh "$BUNDLE" | cut -f1) (carry target/gpu-bundle)"
  exit 0
fi
[ "$MODE" = run ] || { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

STEPS="${2:-2000}"
SECONDS_PER_RUN="${3:-120}"
ONLY="${4:-}"
DEVICE="${DEVICE:-cuda}"
PYTHON="${PYTHON:-python3}"
LAB="$BUNDLE/lab"
[ -x "$LAB" ] || { echo "no $LAB: run 'scripts/gpu_cifar_zoo.sh bundle' on the build machine and carry target/gpu-bundle" >&2; exit 1; }
TORCH_LIB="$("$PYTHON" -c 'import os, torch; print(os.path.join(torch.__path__[0], "lib"))')"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# 1,000 records a file: 5,000 training images, so the 10% subsets still fill a batch of 64.
"$PYTHON" "$ROOT/scripts/random_cifar.py" "$TMP" 1000

if [ "$DEVICE" = cuda ]; then
  GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)"
  [ -n "$GPU" ] || GPU="$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0))')"
else
  GPU="CPU ($(nproc) cores)"
fi
REPORT="$TMP/report.md"
{
  echo "Device: $GPU; torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); lab $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); $STEPS steps asked, each run cut at $SECONDS_PER_RUN s."
  echo
  echo "| experiment | steps done | s/step | img/s (perf/img_per_s) |"
  echo "|---|--:|--:|--:|"
} >"$REPORT"

throughput() {  # experiment file (under experiments/, without .toml)
  local exp="$1" status=0
  [[ "$exp" == *"$ONLY"* ]] || return 0
  local runs="$TMP/runs-${exp//\//_}" log="$TMP/${exp//\//_}.log"
  timeout "$SECONDS_PER_RUN" "$LAB" run "$ROOT/experiments/$exp.toml" --quiet --runs-dir "$runs" \
    --set "data.root=\"$TMP\"" --set data.download=false --set "device=\"$DEVICE\"" \
    --set "train.steps=$STEPS" --set 'eval.metrics=[]' --set "log.every=${LOG_EVERY:-20}" \
    --set log.samples_every=0 --set checkpoint.every=0 >"$log" 2>&1 || status=$?
  # 124: cut by the time limit, which the table says; anything else is a failure to show.
  if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
    echo "| $exp | failed (exit $status): $(grep -m1 -i error "$log" | tr '|' '/') | | |" >>"$REPORT"
    return 0
  fi
  "$PYTHON" - "$runs" "$exp" >>"$REPORT" <<'EOF'
import glob, json, statistics, sys
runs, exp = sys.argv[1:]
paths = glob.glob(f"{runs}/*/*/metrics.jsonl")
rows = [json.loads(line) for line in open(paths[0])] if paths else []
perf = sorted((r["step"], r["time"], r["value"]) for r in rows if r["key"] == "perf/img_per_s")
# The first interval holds the warm-up; the medians read the ones after it.
steady = perf[1:]
if len(steady) < 1:
    print(f"| {exp} | {perf[-1][0] if perf else 0} | too few logged intervals | |")
else:
    per_step = statistics.median((b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(perf, perf[1:]))
    img_s = statistics.median(v for _, _, v in steady)
    print(f"| {exp} | {perf[-1][0]} | {per_step:.4f} | {img_s:,.0f} |")
EOF
}

for exp in zoo/sngan_cnn_cifar10 zoo/sngan_resnet_cifar10 zoo/wgan_gp_resnet_cifar10 zoo/sagan_cifar10 \
  zoo/stylegan2_cifar10 zoo/stylegan2_ada_cifar10 diffaugment_stylegan2_cifar10_100pct \
  biggan_cifar10_100pct diffaugment_cifar10_100pct; do
  throughput "$exp"
done
cat "$REPORT"
[ -z "${OUT:-}" ] || cp "$REPORT" "$OUT/gpu_cifar_zoo.md"
