#!/usr/bin/env python3
"""Screenshots of the two viewers lab logs to, for the docs: TensorBoard's HParams dashboard and
MLflow's pages for two variants of one experiment. Both servers must be running already.

    ./lab sweep experiments/fashion_mnist_diffaugment.toml ...   # with MLFLOW_TRACKING_URI set
    .venv/bin/tensorboard --logdir runs --port 6006 &
    python3 scripts/screenshots.py --tensorboard http://127.0.0.1:6006 \
        --mlflow http://127.0.0.1:5000 --experiment fashion_mnist_diffaugment \
        --variant 'augment.name=none,data.fraction=0.02,seed=0' \
        --variant 'augment.name=diffaugment,data.fraction=0.02,seed=0' --out docs

Needs Chromium (Debian: apt-get install chromium) and the `playwright` Python package
(pip install playwright; it drives the system Chromium, no browser download). Writes
tracking_tensorboard_hparams.png, tracking_mlflow_compare.png and tracking_mlflow_run.png.
"""
import argparse
import json
import os
import sys
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def find_run(mlflow, experiment_id, variant):
    """The newest finished run whose params match `key=value,...`."""
    clauses = []
    for pair in variant.split(","):
        key, value = pair.split("=", 1)
        clauses.append(f"params.`{key}` = '{value}'")
    found = post(f"{mlflow}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment_id],
        "filter": " and ".join(clauses) + " and attributes.status = 'FINISHED'",
        "order_by": ["attributes.start_time DESC"],
        "max_results": 1,
    }).get("runs", [])
    if not found:
        sys.exit(f"screenshots.py: no finished MLflow run with {variant}")
    return found[0]["info"]["run_id"]


def close_mlflow_panels(page):
    """MLflow 3 opens an assistant side panel and feature tips; close them so the page shows."""
    for label in ["Got it", "Close"]:
        for el in page.get_by_role("button", name=label).all():
            try:
                el.click(timeout=1000)
            except Exception:
                pass
    page.wait_for_timeout(500)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tensorboard", required=True)
    ap.add_argument("--mlflow", required=True)
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--variant", action="append", required=True, help="params of one run: k=v,k=v (twice)")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if len(args.variant) != 2:
        sys.exit("screenshots.py: give exactly two --variant")
    os.makedirs(args.out, exist_ok=True)
    exp = post(f"{args.mlflow}/api/2.0/mlflow/experiments/search",
               {"filter": f"name = '{args.experiment}'", "max_results": 1})["experiments"][0]
    runs = [find_run(args.mlflow, exp["experiment_id"], v) for v in args.variant]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1800, "height": 1050})

        page.goto(f"{args.tensorboard}/#hparams")
        page.wait_for_timeout(6000)
        page.screenshot(path=os.path.join(args.out, "tracking_tensorboard_hparams.png"))

        ids = json.dumps(runs, separators=(",", ":"))
        page.set_viewport_size({"width": 1800, "height": 1700})
        page.goto(f"{args.mlflow}/#/compare-runs?runs={ids}&experiments=[\"{exp['experiment_id']}\"]")
        page.wait_for_timeout(6000)
        close_mlflow_panels(page)
        # Only the parameters and metrics that differ between the two runs.
        for toggle in page.get_by_role("switch").all():
            try:
                toggle.click(timeout=1000)
            except Exception:
                pass
        page.wait_for_timeout(1000)
        page.get_by_text("Comparing 2 Runs").first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=os.path.join(args.out, "tracking_mlflow_compare.png"), full_page=True)
        page.set_viewport_size({"width": 1800, "height": 1050})

        page.goto(f"{args.mlflow}/#/experiments/{exp['experiment_id']}/runs/{runs[1]}")
        page.wait_for_timeout(6000)
        close_mlflow_panels(page)
        page.screenshot(path=os.path.join(args.out, "tracking_mlflow_run.png"), full_page=True)
        browser.close()
    print(f"wrote 3 screenshots to {args.out}/ (runs {runs[0]} and {runs[1]})")


if __name__ == "__main__":
    main()
