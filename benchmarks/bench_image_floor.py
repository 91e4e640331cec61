"""Benchmark of the image floor's calibration: over --splits random splits of the digits, how
often real images unseen by the classifier and the floor, scored as if generated, land above the
floor's 95th percentile (target 5%) and outside its 5-95% band (target 10%), in FD and in KID.

Each split goes through `ddpm_lab.images.calibration.calibrate_floor`, that is through
`evaluate_samples` as the evaluate_images stage calls it, with images_eval from params.yaml
(bootstrap resamples, which the floor does not use, cut to 2). About 1.7 s per split on 2 cores.

    python benchmarks/bench_image_floor.py [--splits 200] [--write benchmarks/results/image_floor.json]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from scipy import stats
from tqdm import tqdm

from ddpm_lab.images.calibration import MEASURES, calibrate_floor
from ddpm_lab.images.metrics import EvalConfig
from ddpm_lab.runtime.params import from_section

if __package__:  # python -m benchmarks.bench_image_floor
    from . import harness
else:  # python benchmarks/bench_image_floor.py: its folder, benchmarks/, comes first on the import path
    import harness


def share(k: int, n: int) -> str:
    ci = stats.binomtest(k, n).proportion_ci(0.95)
    return f"{k / n:.3f} [{ci.low:.3f}, {ci.high:.3f}] ({k}/{n})"


def consistent_with(k: int, n: int, rate: float) -> bool:
    """k of n is consistent with a rate <= `rate` (one-sided binomial test at the 1% level)."""
    return bool(stats.binomtest(k, n, rate, alternative="greater").pvalue >= 0.01)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=200, help="random splits of the digits (seeds 0..splits-1)")
    ap.add_argument("--params", type=Path, default=harness.PARAMS)
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/image_floor.json)")
    args = ap.parse_args(argv)
    if args.splits < 1:
        ap.error(f"--splits = {args.splits}: expected an integer >= 1")
    params = harness.read_params(args.params)
    cfg = replace(from_section(EvalConfig, params, "images_eval", str(args.params)), bootstrap=2)
    n_ref, n_gen = params["images_data"]["n_heldout"], params["images_sample"]["n_samples"]
    t0 = time.perf_counter()
    with tqdm(total=args.splits, desc="floor calibration splits", leave=False, mininterval=0.5) as bar:
        cal = calibrate_floor(cfg, n_ref, n_gen, range(args.splits), progress=lambda _: bar.update())
    rows = []
    for m in MEASURES:
        for what, k, rate in (
            (f"{m.upper()}: unseen real images above the floor's p95", cal.above[m], 0.05),
            (f"{m.upper()}: unseen real images outside the floor's 5-95% band", cal.outside(m), 0.10),
        ):
            rows.append(harness.Row(what, share(k, cal.splits), f"<= {rate:.0%}", consistent_with(k, cal.splits, rate)))
            print(f"{what}: {rows[-1].measured}", flush=True)
    print(f"bench_image_floor: {cal.splits} splits in {time.perf_counter() - t0:.0f} s")
    if args.write:
        doc = {"benchmark": "image_floor", "cpus": os.cpu_count(), "splits": cal.splits, "rows": rows}
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
