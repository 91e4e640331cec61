"""Compare variants over their replicates: `python -m ddpm_lab.tools.compare [--json FILE] [--out HTML]`.

Reads `dvc exp show --json` (run here, or saved output with --json FILE): every committed
baseline and experiment, with its params (params.yaml) and headline metrics. Runs whose params
are equal except for the top-level `replicate` are one *variant*; a variant is named by the
params in which it differs from the baseline (the variant of the first committed baseline).
For each headline metric it reports
the mean over a variant's replicates with a 95% Student-t interval (none for n = 1), and the
difference of each variant from the baseline: paired by replicate where both have at least two
replicates in common, Welch otherwise (`ddpm_lab/tools/verdicts.py`). Verdicts keep a family-wise error
rate of 5% over every test of the call (Holm), or over the tests of one metric declared with
--primary; --sequential N makes them valid however replicates are added, up to N. Prints a table
(at most 120 characters wide; --format json: one object per metric x variant) and writes a
self-contained HTML table (--out, default reports/compare.html).

A metric counts for a run only if the run produced it: a stage whose recorded params in the
run's dvc.lock differ from the run's params.yaml (or that depends on such a stage's outputs)
was not rerun for it, so its metrics are the parent's and are left out (e.g. the image
metrics of an experiment run as `dvc exp run ... compare_dist`). The lock is read with
`git show REV:dvc.lock` (`ddpm_lab/tools/dvc_lock.py`); a run whose commit is not in this
repository keeps all its metrics.

Runs with the very same params (replicate included) are one run, counted once: the pipeline is
reproducible, so a rerun gives the same bytes (DVC lists an experiment whose params equal its
baseline commit's next to it). The workspace row is left out (it repeats the last experiment
applied, or holds params not yet reproduced) unless --workspace. Rows of different commits with
equal params are pooled: compare experiments of one commit (dvc exp show's default, HEAD; or
--rev REV for the experiments of another commit).

The parts: `ddpm_lab/tools/runs.py` reads the runs and groups them into variants,
`ddpm_lab/tools/verdicts.py` makes the tests and verdicts, `ddpm_lab/tools/render.py` prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.io import write_outputs
from ddpm_lab.runtime.params import DataError
from ddpm_lab.tools.dvc_lock import flatten, read_lock, stale_outputs
from ddpm_lab.tools.render import conditions, guarantee, html_report, json_rows, table
from ddpm_lab.tools.runs import (
    HEADLINE,
    Run,
    Variant,
    collect,
    drop_stale,
    group,
    headline_names,
    load_runs,
    metric_names,
    read_exp_show,
    save_runs,
)
from ddpm_lab.tools.verdicts import ALPHA, SEQ_MAX, mean_ci, rows

__all__ = [  # re-exported for the callers of this module (tests, benchmarks, scripts, simulate.py)
    "HEADLINE",
    "DataError",
    "Run",
    "Variant",
    "collect",
    "conditions",
    "drop_stale",
    "flatten",
    "group",
    "guarantee",
    "headline_names",
    "html_report",
    "json_rows",
    "load_runs",
    "main",
    "mean_ci",
    "metric_names",
    "read_exp_show",
    "read_lock",
    "rows",
    "run_stage",
    "save_runs",
    "stale_outputs",
    "table",
]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="saved output of `dvc exp show --json` (default: run it)")
    ap.add_argument("--rev", help="compare the experiments of this commit (default: HEAD's)")
    ap.add_argument("--out", type=Path, default=Path("reports/compare.html"), help="the HTML table")
    ap.add_argument("--workspace", action="store_true", help="include the workspace row")
    ap.add_argument("--save", type=Path, help="also write the runs compared (params, metrics) as JSON")
    ap.add_argument("--runs", type=Path, help="compare runs saved with --save instead of dvc exp show")
    ap.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="print the table as text (default) or as JSON, one object per metric x variant",
    )
    ap.add_argument(
        "--primary",
        metavar="METRIC",
        help=f"the one pre-declared metric whose tests get the whole {100 * ALPHA:g}%% "
        f"(default: all headline metrics share it); one of {', '.join(headline_names())}",
    )
    ap.add_argument(
        "--sequential",
        type=int,
        metavar="N",
        help="replicates are added as you go, at most N pairs per variant, declared before the first "
        f"look ({SEQ_MAX[0]} to {SEQ_MAX[1]}): group-sequential verdicts valid at every look",
    )
    args = ap.parse_args(argv)
    if args.primary is not None and args.primary not in headline_names():
        raise DataError(f"--primary {args.primary}: expected one of {', '.join(headline_names())}")
    if args.sequential is not None and not SEQ_MAX[0] <= args.sequential <= SEQ_MAX[1]:
        raise DataError(
            f"--sequential {args.sequential}: expected a maximum number of pairs in "
            f"[{SEQ_MAX[0]}, {SEQ_MAX[1]}], declared before the first look"
        )
    if args.runs is not None:
        runs = load_runs(args.runs)
    else:
        runs = collect(read_exp_show(args.json, args.rev), workspace=args.workspace)
    if not runs:
        raise DataError("dvc exp show: no baseline or experiment with params and metrics: run the pipeline first")
    variants = group(runs)
    if args.primary is not None and args.primary not in metric_names(variants):
        raise DataError(
            f"--primary {args.primary}: no run has this metric (present: {', '.join(metric_names(variants)) or 'none'})"
        )
    how = {"alpha": ALPHA, "primary": args.primary, "sequential": args.sequential}
    text = json.dumps(json_rows(variants, **how), indent=1) if args.format == "json" else table(variants, **how)
    write_outputs(
        {args.out: html_report(variants, **how).encode(), **({args.save: save_runs(runs)} if args.save else {})}
    )
    print(text)
    print(
        f"compare: {len(variants)} variants, {len(runs)} runs -> {args.out}",
        file=sys.stderr if args.format == "json" else sys.stdout,
    )


if __name__ == "__main__":
    run_stage(main)
