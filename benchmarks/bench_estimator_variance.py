"""The gradient-noise study of stage estimator_variance (off by default), run on the study's
trained models for the docs: the figure, the details and the headline with its wall time.

Runs `python -m stages.estimator_variance` on params.yaml with estimator_variance.enabled true
(a temporary copy; the tracked outputs are untouched) and models/, data/gmm/ of the current
study. Writes docs/figures/estimator_variance.png, benchmarks/results/estimator_variance.csv and,
with --write, benchmarks/results/estimator_variance.json (rows for the benchmark table, and the
stage's headline for docs/estimators.md).

    .venv/bin/python benchmarks/bench_estimator_variance.py --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=ROOT / "params.yaml", type=Path)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/estimator_variance.json")
    args = ap.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    params["estimator_variance"]["enabled"] = True
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "stages.estimator_variance", "--params", str(t / "params.yaml")]
            + ["--models", "models", "--data", "data/gmm", "--metrics-out", str(t / "head.json")]
            + ["--details-out", str(RESULTS / "estimator_variance.csv")]
            + ["--figure-out", str(ROOT / "docs" / "figures" / "estimator_variance.png")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"stages.estimator_variance exited {proc.returncode}")
        head = json.loads((t / "head.json").read_text())
    print(proc.stdout.strip())
    rows = [
        {
            "what": "trajectory estimator's cost / eq12's per unit of gradient precision, initial weights",
            "measured": f"{head['eq3_cost_x']:.3g} +- {head['eq3_cost_x_se']:.2g}",
            "target": "",
            "met": None,
        },
        {
            "what": "stage estimator_variance, enabled, default params: wall time",
            "measured": f"{wall:.1f} s",
            "target": "",
            "met": None,
        },
    ]
    for r in rows:
        print(f"  {r['what']:<90} {r['measured']}")
    if args.write:
        out = {"benchmark": "estimator_variance", "rows": rows, "headline": head}
        (RESULTS / "estimator_variance.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
