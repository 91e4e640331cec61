"""Benchmark of the image floor per reference: over --references splits of the digits (one
held-out reference each), how often a "generated" set of unseen real images lands above the
floor's 95th percentile against that one reference, out of --draws sets, for the pipeline's floor
(`pooled`) and for a floor conditional on the reference (`conditional`), each with the sets drawn
exchangeable with the floor's images or from a fresh source (ddpm_lab.images.calibration.reference_rates).

Every set of a reference is judged against one band, as the pipeline judges one generated set, so
a reference's count is beta-binomial, not binomial: if the sets are exchangeable with the m floor
draws, the mass above the floor's interpolated 95th percentile, at most that above its k-th order
statistic (k = floor(0.95 (m - 1)) + 1), is Beta(m - k + 1, k) distributed: mean 5.5% for m = 200.
A reference's count is consistent with that when a one-sided beta-binomial test is not rejected at
the Holm level (5% family-wise, statsmodels) across the references of its row.
About 6 s per reference on 2 cores.

    python benchmarks/bench_image_floor_reference.py [--references 10] [--draws 100] [--write benchmarks/results/image_floor_reference.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from tqdm import tqdm

from ddpm_lab.images.calibration import reference_rates
from ddpm_lab.images.metrics import EvalConfig
from ddpm_lab.runtime.params import from_section

if __package__:  # python -m benchmarks.bench_image_floor_reference
    from . import harness
else:  # python benchmarks/bench_image_floor_reference.py
    import harness

ALPHA = 0.05


def null_count(draws: int, floor_draws: int):
    """The count above the band's p95 of `draws` sets exchangeable with its `floor_draws` draws
    (bounded above by): BetaBinomial(draws, m - k + 1, k), k = floor(0.95 (m - 1)) + 1."""
    k = int(0.95 * (floor_draws - 1)) + 1
    return stats.betabinom(draws, floor_draws - k + 1, k)


def summarise(group: pd.DataFrame, floor_draws: int) -> tuple[str, bool]:
    """'min-max per reference (mean)' of the rates, and whether every count is consistent with an
    exchangeable set's (one-sided beta-binomial tests, Holm across the references)."""
    rates = group.above / group.draws
    p = [null_count(int(d), floor_draws).sf(int(k) - 1) for k, d in zip(group.above, group.draws)]
    rejected = multipletests(p, alpha=ALPHA, method="holm")[0]
    text = (
        f"{rates.min():.2f}-{rates.max():.2f} (mean {rates.mean():.3f}; {int(rejected.sum())}/{len(rates)} refs above)"
    )
    return text, not rejected.any()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--references", type=int, default=10, help="splits of the digits (seeds 0..references-1)")
    ap.add_argument("--draws", type=int, default=100, help="generated sets per reference")
    ap.add_argument("--params", type=Path, default=harness.PARAMS)
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/image_floor_reference.json)")
    args = ap.parse_args(argv)
    for key in ("references", "draws"):
        if getattr(args, key) < 2:
            ap.error(f"--{key} = {getattr(args, key)}: expected an integer >= 2")
    params = harness.read_params(args.params)
    cfg = from_section(EvalConfig, params, "images_eval", str(args.params))
    t0 = time.perf_counter()
    with tqdm(total=args.references, desc="references", leave=False, mininterval=0.5) as bar:
        raw = reference_rates(
            cfg, params["images_data"]["n_heldout"], range(args.references), args.draws, lambda _: bar.update()
        )
    frame = pd.DataFrame(raw)
    rows = harness.Rows(widths=(62, 56))
    for (framing, floor, measure, n), group in frame.groupby(["framing", "floor", "measure", "n"], sort=False):
        text, ok = summarise(group, cfg.floor_draws)
        rows.add(
            f"{measure.upper()}, {floor} floor, {framing} sets (n = {n})",
            text,
            "every reference beta-binomial (5.5%)",
            ok,
        )
    print(
        f"bench_image_floor_reference: {args.references} references x {args.draws} sets in {time.perf_counter() - t0:.0f} s"
    )
    if args.write:
        doc = {
            "benchmark": "image_floor_reference",
            "cpus": os.cpu_count(),
            "references": args.references,
            "draws": args.draws,
            "floor_draws": cfg.floor_draws,
            "rows": rows,
            "per_reference": raw,
        }
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
