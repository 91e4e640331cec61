"""Ho et al. 2020's Table 2 on the mixture, exactly: what the network predicts and the reverse
variance, ablated over replicate-matched training runs, each model measured without sampling noise.

Rows (VARIANTS, each params.yaml with a few keys overridden; train_eq12 trains every model):
eps with L_simple (Eq. 14) and fixed beta_t, the baseline; eps with the true bound (Eq. 12's
weights) and fixed beta_t, and fixed beta~_t; x0 prediction (the paper's mu~ column, its mean
parameterised through x0) with the true bound; eps with a learned Sigma trained by L_hybrid
(Nichol & Dhariwal 2021), as published and with this lab's preconditioned L_vlb
(train_eq12.hybrid_vlb); eps with L_simple and the optimal per-t variance (Bao et al. 2022,
computed exactly for the mixture: docs/variance.md). Replicate r folds r into the training seed, as
`replicate` does in the pipeline, so the rows' r-th runs share their randomness where they can.

Columns, per run, all exact (no sampling noise; errors: quadrature and grid, far below the
replicate spread):
- bound_gap: the model's expected bound (Eq. 5, nats) less the least any Gaussian reverse kernel
  with the best mean reaches (the per-x_t optimal diagonal variance, ddpm_lab.gmm.variance.per_xt_terms),
  one reference for every row;
- exact_kl, w1_ratio, ks_ratio: Algorithm 2's output distribution propagated on a grid
  (ddpm_lab.gmm.propagate), KL(q || p) in nats, W1 and KS as ratios to the median of the floor that
  compare_dist uses (exact samples of the pooled sample.n x seeds);
- nfe: the smallest S of STEPS at which respaced DDPM's exact output has W1 and KS both inside that
  floor's band (at or below its p95, runtime.stats.in_band); a run inside at none of them has no nfe.

Each column's difference from the baseline is tested by the compare tool's own code
(ddpm_lab.tools.verdicts.rows: paired by replicate, Student t, Holm over every column and row), and
each learned-Sigma row against the fixed-beta_t true-bound row on bound_gap (the target: no worse).

The digits (--branch images): the same rows but the optimal variance (no exact noise error to build
it from), each replicate run through the pipeline itself in a clean copy of the study (`dvc repro
evaluate_images`), its columns metrics/images.json's: bits/dim (the bound with Eq. 13's decoder), and
FD and KID against their floors.

    python benchmarks/bench_table2.py [--branch gmm|images] [--replicates 5] [--jobs 2] [--write FILE]
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path


from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.tools.runs import Run, Variant
from ddpm_lab.tools.verdicts import difference, rows as verdict_rows

if __package__:  # python -m benchmarks.bench_table2
    from . import harness, table2_runs as T
else:  # python benchmarks/bench_table2.py
    import harness
    import table2_runs as T


def verdicts(records: list[dict], variants: dict, metrics: tuple, key: str, echo: bool = True):
    """The compare tool's tests (ddpm_lab.tools.verdicts.rows: paired by replicate, Holm over every
    metric and row) of each row against the baseline (printed where echo), and each learned-Sigma row
    with runs against the fixed-beta_t true-bound row on `key`. Returns (the verdict table, {row: that test})."""
    groups = []
    for name, over in variants.items():
        runs = [r for r in records if r["variant"] == name]
        values = [{m: r[m] for m in metrics if r.get(m) is not None} for r in runs]
        groups.append(
            Variant(name, over, [Run(name, "", {"replicate": r["replicate"]}, v) for r, v in zip(runs, values)])
        )
    table = verdict_rows(groups, prospective=False, metrics=list(metrics))
    by_name = {v.name: v for v in groups}
    fixed = by_name[T.FIXED].by_replicate(key)
    targets = {name: difference(by_name[name].by_replicate(key), fixed) for name in (T.LEARNED, T.PRECONDITIONED)}
    for r in table if echo else ():
        if r["id"] != "v0" and r["tested"]:
            lo, hi = r["interval"]
            what = f"{r['variant']}: {r['metric']} - baseline"
            print(f"  {what:<60} {r['diff']:+.4g} [{lo:+.3g}, {hi:+.3g}]  {r['verdict']}")
    return table, {name: test for name, test in targets.items() if test is not None}  # learned - fixed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branch", choices=("gmm", "images"), default="gmm", help="the mixture's rows or the digits'")
    ap.add_argument("--params", type=Path, default=harness.PARAMS, help="gmm only (images: the study's params.yaml)")
    ap.add_argument("--replicates", type=int, default=5, help="replicate runs per row (>= 2 for the tests)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (gmm: one torch thread each; images: copies)")
    ap.add_argument("--write", type=Path, help="keep the runs and the table here (benchmarks/results/table2_*.json)")
    ap.add_argument(
        "--runs", type=Path, help="the runs of an earlier --write: the tests again, after running the runs it lacks"
    )
    args = ap.parse_args(argv)
    if args.replicates < 2:
        ap.error(f"--replicates {args.replicates}: expected >= 2 (the paired tests need two runs per row)")
    saved = json.loads(args.runs.read_text())["runs"] if args.runs else []
    done = {(r["variant"], r["replicate"]) for r in saved}  # --runs: only the runs it lacks
    variants = T.VARIANTS if args.branch == "gmm" else T.IMAGE_VARIANTS
    jobs = [(name, r) for r in range(args.replicates) for name in variants if (name, r) not in done]
    if args.branch == "gmm":
        params = harness.read_params(args.params)
        gmm_params.read(params, "gmm")  # a bad params file fails here, before any training
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            records = saved + (list(pool.map(T.one_run, [params] * len(jobs), *zip(*jobs))) if jobs else [])
        table, targets = verdicts(records, T.VARIANTS, T.METRICS, "bound_gap")
        what, fmt = "bound_gap, nats", "+.5f"
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            parts = pool.map(T.image_runs, [jobs[i :: args.jobs] for i in range(args.jobs)]) if jobs else []
            records = saved + [r for part in parts for r in part]
        table, targets = verdicts(records, T.IMAGE_VARIANTS, T.IMAGE_METRICS, "bpd")
        what, fmt = "bits/dim", "+.4f"
    shown = sum(r["differs"] for r in table)
    rows = harness.Rows(widths=(60, 40))
    rows.add(
        f"Table 2 ({args.branch}): rows x columns differing from the first",
        f"{shown} of {sum(r['tested'] for r in table)}",
        "Holm 5%",
    )
    for name, test in targets.items():
        lo, hi = test.interval
        rows.add(
            f"{name.removeprefix('eps, ')} - fixed beta_t (true bound): {what}",
            f"{test.diff:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]",
            "<= 0 (no worse)",
            hi <= 0,
        )
    runs_s = sum(r["seconds"] for r in records)
    rows.add("the runs: time, summed over runs", f"{runs_s:.0f} s", f"{len(records)} runs, {os.cpu_count()} cores")
    if args.write:
        doc = {"benchmark": f"table2_{args.branch}", "cpus": os.cpu_count(), "replicates": args.replicates}
        doc |= {"variants": T.VARIANTS if args.branch == "gmm" else T.IMAGE_VARIANTS, "baseline": T.BASELINE}
        doc |= {"steps": T.STEPS, "runs": records, "verdicts": table, "rows": rows}
        harness.write_results(args.write, doc, indent=1)


if __name__ == "__main__":
    main()
