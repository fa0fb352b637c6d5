#!/usr/bin/env bash
# The overhead of tracking on the quickstart (CPU): steps/s with only metrics.jsonl, with
# TensorBoard, and with TensorBoard + MLflow (a real local server), side by side.
# Usage: scripts/bench_tracking.sh [steps]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEPS="${1:-400}"
cd "$ROOT"
./lab build
tmp="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow server --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$tmp/mlflow.db" --artifacts-destination "$tmp/artifacts" --serve-artifacts \
  > "$tmp/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 1; done
rate() {  # mean img/s after the first logging interval, as steps/s
  python3 - "$1" <<'PY'
import json, pathlib, sys
run = next(pathlib.Path(sys.argv[1]).glob("quickstart/*"))
r = [json.loads(l)["value"] for l in open(run / "metrics.jsonl") if '"perf/img_per_s"' in l]
print(f"{sum(r[1:]) / len(r[1:]) / 64:.2f}")
PY
}
common=(--quiet --set train.steps="$STEPS" --set log.every=50 --set log.samples_every=100 --set checkpoint.every=0)
for round in 1 2; do
  target/release/lab run experiments/quickstart.toml "${common[@]}" --runs-dir "$tmp/a$round" --set track.tensorboard=false
  target/release/lab run experiments/quickstart.toml "${common[@]}" --runs-dir "$tmp/b$round"
  MLFLOW_TRACKING_URI="http://127.0.0.1:$port" target/release/lab run experiments/quickstart.toml "${common[@]}" --runs-dir "$tmp/c$round"
  echo "round $round: jsonl only $(rate "$tmp/a$round") steps/s, +TensorBoard $(rate "$tmp/b$round"), +TensorBoard+MLflow $(rate "$tmp/c$round")"
done
