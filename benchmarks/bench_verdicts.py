"""Benchmark of the compare command's verdicts: their error rates and power, by simulation
through the real code path (`ddpm_lab.tools.simulate`: `compare.group` then `compare.rows`).

Each simulated study has a baseline and one variant over the 7 headline metrics, with a shared
per-replicate effect (correlation --rho of replicate-matched runs, as the shared seeds give).
Rows, each a share of studies with its 95% Clopper-Pearson interval:
- A/A, n replicates fixed in advance: any false "differs" (target <= 5%);
- A/A, optional stopping (replicates added one at a time from 2 up to --max, stop at the first
  "differs"): with the fixed-n verdicts (what the sequential plan exists to prevent) and with
  `--sequential MAX` (target <= 5%);
- power for a stated effect (eq12 vs eq14's exact bound gap: 0.00715 nats, SD 0.0037, matched
  correlation 0.58, from benchmarks/replicates/eq12_vs_eq14.json) at n paired replicates:
  declared primary, within the 7-metric Holm family, and the former unpaired Welch test at 5%.

    python benchmarks/bench_verdicts.py [--sims 4000] [--write benchmarks/results/verdicts.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy import stats

from ddpm_lab.tools import simulate
from ddpm_lab.tools.verdicts import ALPHA, welch_test

if __package__:  # python -m benchmarks.bench_verdicts
    from . import harness
else:  # python benchmarks/bench_verdicts.py: its folder, benchmarks/, comes first on the import path
    import harness

EFFECT = ("eq12.bound_gap", 0.00715, 0.0037, 0.58)  # metric, difference, replicate SD, matched correlation


def share(k: int, n: int) -> str:
    ci = stats.binomtest(k, n).proportion_ci(0.95)
    return f"{k / n:.3f} [{ci.low:.3f}, {ci.high:.3f}] ({k}/{n})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=4000, help="simulated studies per row")
    ap.add_argument("--n", type=int, default=5, help="replicates per side at a fixed n")
    ap.add_argument("--max", type=int, default=10, help="the most replicates under optional stopping")
    ap.add_argument("--rho", type=float, default=0.6, help="correlation of replicate-matched runs (A/A rows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/verdicts.json)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []

    def row(what: str, k: int, target: str = "", met: bool | None = None) -> None:
        rows.append(harness.Row(what, share(k, args.sims), target, met))
        print(f"{what}: {rows[-1].measured}", flush=True)

    def at_most_alpha(k: int) -> bool:  # consistent with a rate <= 5% (one-sided binomial test, 1% level)
        return bool(stats.binomtest(k, args.sims, ALPHA, alternative="greater").pvalue >= 0.01)

    t0 = time.perf_counter()
    with simulate.frozen_heap():
        k = sum(any(simulate.verdicts(simulate.study(rng, args.n, args.rho)).values()) for _ in range(args.sims))
        row(
            f"A/A, {args.n} replicates fixed in advance, 7 metrics: any false 'differs' (Holm 5%, paired)",
            k,
            "<= 5%",
            at_most_alpha(k),
        )

        # the same studies for both rows, drawn again from their own seeds: thousands of studies
        # kept in memory would make every gc.collect() of multipletests walk them
        def study(i: int) -> list:
            return simulate.study(np.random.default_rng([args.seed, 1, i]), args.max, args.rho)

        k = sum(simulate.stops_at(study(i)) is not None for i in range(args.sims))
        row(f"A/A, optional stopping 2..{args.max} replicates with the fixed-n verdicts (misuse)", k)
        k = sum(simulate.stops_at(study(i), sequential=args.max) is not None for i in range(args.sims))
        row(
            f"A/A, optional stopping 2..{args.max} replicates with --sequential {args.max}",
            k,
            "<= 5%",
            at_most_alpha(k),
        )
        metric, effect, sd, rho = EFFECT
        hits = {"primary": 0, "family": 0, "welch": 0}
        for _ in range(args.sims):
            runs = simulate.study(rng, args.n, rho, effect={metric: effect}, sd={metric: sd})
            hits["primary"] += simulate.verdicts(runs, primary=metric)[metric]
            hits["family"] += simulate.verdicts(runs)[metric]
            side = {v: [r.metrics[metric] for r in runs if r.params["variant"] == v] for v in "ab"}
            hits["welch"] += welch_test(side["b"], side["a"]).p < ALPHA
        what = f"power, {effect} nats on {metric} at {args.n} replicates"
        row(
            f"{what}: paired, --primary",
            hits["primary"],
            "no lower than the former Welch test",
            hits["primary"] >= hits["welch"],
        )
        row(f"{what}: paired, Holm over 7 metrics", hits["family"])
        row(f"{what}: the former unpaired Welch test at 5%, that metric alone", hits["welch"])
    print(f"bench_verdicts: {time.perf_counter() - t0:.0f} s")
    if args.write:
        doc = {"benchmark": "verdicts", "cpus": os.cpu_count(), "sims": args.sims, "rows": rows}
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
