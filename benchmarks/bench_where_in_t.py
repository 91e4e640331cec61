"""Where in t each trained variant of a saved replicates file moves the Eq. 12 model's exact bound
gap: the table of ddpm_lab.tools.where_in_t, written for the docs (not a test).

Every run's per-t exact errors (metrics/details/eps_error_eq12.csv of its experiment, read at its
rev through dvc.api: the experiments' outputs must be in this repository's DVC cache) split its gap
at the hybrid diagnostic's switch points (sampler_tradeoff.hybrid_t0 of params.yaml). Variants that
change only sampling params (sample.*) share the baseline's trained models and are left out.

    python benchmarks/bench_where_in_t.py benchmarks/replicates/design_space.json \
        --write benchmarks/results/where_in_t.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ddpm_lab.tools.compare import group, load_runs
from ddpm_lab.tools.where_in_t import read_runs, table

if __package__:  # python -m benchmarks.bench_where_in_t
    from . import harness
else:  # python benchmarks/bench_where_in_t.py: its folder, benchmarks/, comes first on the import path
    import harness
SAMPLING = "sample."  # params of stage sample alone: no training differs


def trained(variants) -> list:
    """The baseline and every variant that changes more than sampling params."""
    base = variants[0].params
    return [variants[0]] + [
        v for v in variants[1:] if any(not p.startswith(SAMPLING) for p in v.params if v.params[p] != base.get(p))
    ]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="a replicates file saved by `ddpm-lab compare --save`")
    ap.add_argument("--write", type=Path, help="the table as CSV (benchmarks/results/where_in_t.csv)")
    args = ap.parse_args(argv)
    t0s = harness.read_params()["sampler_tradeoff"]["hybrid_t0"]
    rows = table(read_runs(trained(group(load_runs(args.runs))), t0s, repo=str(harness.ROOT)))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(rows.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if args.write:
        args.write.write_text(rows.to_csv(index=False))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
