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
import tempfile
from pathlib import Path

if __package__:  # python -m benchmarks.bench_estimator_variance
    from . import harness
else:  # python benchmarks/bench_estimator_variance.py: its folder, benchmarks/, comes first on the import path
    import harness


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=harness.PARAMS, type=Path)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/estimator_variance.json")
    args = ap.parse_args(argv)
    params = harness.override(harness.read_params(args.params), {"estimator_variance.enabled": True})
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        done = harness.run_stage(
            "estimator_variance",
            *("--params", str(harness.write_params(t / "params.yaml", params))),
            *("--models", "models", "--data", "data/gmm", "--metrics-out", str(t / "head.json")),
            *("--details-out", str(harness.RESULTS / "estimator_variance.csv")),
            *("--figure-out", str(harness.ROOT / "docs" / "figures" / "estimator_variance.png")),
            stderr=None,
        )
        if done.proc.returncode != 0:
            raise SystemExit(f"stages.estimator_variance exited {done.proc.returncode}")
        head = json.loads((t / "head.json").read_text())
    print(done.proc.stdout.strip())
    rows = [
        harness.Row(
            "trajectory estimator's cost / eq12's per unit of gradient precision, initial weights",
            f"{head['eq3_cost_x']:.3g} +- {head['eq3_cost_x_se']:.2g}",
        ),
        harness.Row("stage estimator_variance, enabled, default params: wall time", f"{done.seconds:.1f} s"),
    ]
    for r in rows:
        print(f"  {r.what:<90} {r.measured}")
    if args.write:
        doc = {"benchmark": "estimator_variance", "rows": rows, "headline": head}
        harness.write_results(harness.RESULTS / "estimator_variance.json", doc)


if __name__ == "__main__":
    main()
