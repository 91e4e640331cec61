"""A learned Sigma (L_hybrid) against fixed beta_t on the mixture, by training length: the exact
bound gap of each, paired over replicates, and the time each took.

Three rows of benchmarks/bench_table2.py (table2_runs.VARIANTS): eps with the true bound (Eq. 12's
weights) and fixed beta_t, the default study's model; eps with a learned Sigma trained by L_hybrid
as published (Nichol & Dhariwal 2021: train_eq12.hybrid_vlb kl); and the same with this lab's
preconditioned L_vlb (hybrid_vlb preconditioned, docs/variance.md). Each is trained for every
train_eq12.steps of STEPS, `replicate` r folded into the seed as in the pipeline, and measured
exactly (table2_runs.one_run: the bound gap to the best diagonal Gaussian kernel, no sampling
noise). At each length each learned row less the fixed row is tested paired by replicate (Student
t, tools.verdicts.difference), Holm over every row and length; the target is that at the default
length (params.yaml's) a learned Sigma is no worse. The gap against the seconds of training is the
trade-off: a learned variance adds a head the bound's terms train, and the question is whether its
gain is bought with minutes.

    python benchmarks/bench_learned_variance.py [--replicates 5] [--jobs 2] [--write]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.tools.verdicts import difference, holm

if __package__:  # python -m benchmarks.bench_learned_variance
    from . import harness
    from .table2_runs import FIXED, LEARNED, PRECONDITIONED, one_run
else:  # python benchmarks/bench_learned_variance.py
    import harness
    from table2_runs import FIXED, LEARNED, PRECONDITIONED, one_run

STEPS = (3000, 6000, 12000)
ROWS = {"fixed": FIXED, "learned": LEARNED, "preconditioned": PRECONDITIONED}
RESULTS = harness.RESULTS / "learned_variance.json"


def run(params: dict, steps: int, name: str, replicate: int) -> dict:
    """one_run of row `name` trained for `steps`, without the respaced-NFE column."""
    record = one_run(harness.override(params, {"train_eq12.steps": steps}), name, replicate, nfe=False)
    return {**record, "steps": steps}


def table(records: list[dict]) -> list[dict]:
    """Per length and learned row: the mean gaps and training seconds beside fixed beta_t's, and learned
    - fixed paired by replicate, Holm over every row and length."""
    out = []
    for steps in sorted({r["steps"] for r in records}):
        at = {
            k: {r["replicate"]: r for r in records if r["steps"] == steps and r["variant"] == v}
            for k, v in ROWS.items()
        }
        mean = lambda k, field: float(np.mean([r[field] for r in at[k].values()]))  # noqa: E731
        for k in ("learned", "preconditioned"):
            test = difference(*({i: r["bound_gap"] for i, r in at[side].items()} for side in (k, "fixed")))
            out.append(
                {
                    "steps": steps,
                    "row": ROWS[k],
                    "gap_fixed": mean("fixed", "bound_gap"),
                    "gap_learned": mean(k, "bound_gap"),
                }
                | {"seconds_fixed": mean("fixed", "train_seconds"), "seconds_learned": mean(k, "train_seconds")}
                | {"diff": test.diff, "interval": list(test.interval), "p": test.p, "n": test.n}
            )
    for row, rejected in zip(out, holm([r["p"] for r in out])[0]):
        row["differs"] = bool(rejected)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=harness.PARAMS)
    ap.add_argument("--replicates", type=int, default=5, help="replicate runs per row and length (>= 2)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one torch thread each")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(harness.ROOT)}")
    args = ap.parse_args(argv)
    if args.replicates < 2:
        ap.error(f"--replicates {args.replicates}: expected >= 2 (the paired tests need two runs per row)")
    params = harness.read_params(args.params)
    default = gmm_params.read(params, "train_eq12").steps  # a bad params file fails here, before any training
    steps = sorted({*STEPS, default})
    jobs = [(s, name, r) for s in steps for r in range(args.replicates) for name in ROWS.values()]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(run, [params] * len(jobs), *zip(*jobs)))
    rows = harness.Rows(widths=(62, 44))
    for r in table(records):
        lo, hi = r["interval"]
        what = f"{r['steps']} steps, {r['row'].removeprefix('eps, ')}"
        rows.add(f"{what}: bound gap (nats), fixed beta_t / learned", f"{r['gap_fixed']:.5f} / {r['gap_learned']:.5f}")
        target = r["steps"] == default
        rows.add(
            f"{what}: learned - fixed, paired (Holm)",
            f"{r['diff']:+.5f} [{lo:+.5f}, {hi:+.5f}]{' *' if r['differs'] else ''}",
            "<= 0 (no worse)" if target else "",
            hi <= 0 if target else None,
        )
        rows.add(f"{what}: training s, fixed / learned", f"{r['seconds_fixed']:.0f} / {r['seconds_learned']:.0f} s")
    if args.write:
        doc = {"benchmark": "learned_variance", "cpus": os.cpu_count(), "replicates": args.replicates}
        harness.write_results(
            RESULTS, doc | {"steps": steps, "runs": records, "table": table(records), "rows": rows}, indent=1
        )


if __name__ == "__main__":
    main()
