#!/usr/bin/env bash
# One-time (and idempotent) set-up for a fresh machine: the Python venv with libtorch and the
# helper packages, and the offline quickstart dataset. Called by ./lab; safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
say() { printf '\033[1mlab setup:\033[0m %s\n' "$*" >&2; }

python_for_venv() {
  for py in "${LAB_PYTHON:-}" python3.12 python3.11 python3.10 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

setup_venv() {
  local stamp="$VENV/.lab-requirements"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$REQ" "$stamp"; then
    return 0
  fi
  local py
  if ! py=$(python_for_venv); then
    say "no Python >= 3.10 with the venv module found. Install one (Debian: apt-get install python3 python3-venv) or point LAB_PYTHON at it."
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $py"
    "$py" -m venv "$VENV"
  fi
  say "installing torch 2.11.0 (libtorch, ~4.5 GB with its CUDA libraries) and the Python helpers; this takes a few minutes once"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
  cp "$REQ" "$stamp"
}

setup_fashion_mnist() {
  local data="${LAB_DATA:-$HOME/.cache/lab/datasets}"
  if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || \
     [ -f "$data/fashion-mnist/train-images-idx3-ubyte.gz" ] || [ -f "$data/fashion-mnist/train-images-idx3-ubyte" ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Fashion-MNIST from Debian (dataset-fashion-mnist)"
    if apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
       { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; then
      return 0
    fi
    say "apt-get could not install dataset-fashion-mnist; lab will try the canonical download on first use"
  else
    say "Fashion-MNIST not found; lab will download it (with checksums) on first use, or install Debian's dataset-fashion-mnist as root"
  fi
}

setup_venv
setup_fashion_mnist
