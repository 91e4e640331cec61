"""Every sampler at low NFE: the network evaluations per draw at which the exact eps* (the oracle)
and the Eq. 12 model enter the floor's band, on the default study.

Runs stage sampler_tradeoff (off by default) on params.yaml with every sampler of
ddpm_lab.core.sampling.SAMPLERS and steps S in STEPS (a temporary params copy; the hybrid
diagnostic off; the tracked outputs untouched), on models/ and data/gmm/ of the current study.
Writes the details table to benchmarks/results/sampler_nfe.csv, the figure to
docs/figures/sampler_nfe.png and, with --write, benchmarks/results/sampler_nfe.json: per sampler
and eps-predictor, the smallest NFE whose W1 and KS ratios both lie inside the floor's band (at
or below its p95: runtime.stats.in_band). Then respaced DDPM once more with
diffusion.variance optimal (Analytic-DPM's variance, docs/variance.md), in a clean copy of the
study whose models train under it (`dvc repro sampler_tradeoff` there: a few minutes).

    .venv/bin/python benchmarks/bench_sampler_nfe.py --write
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from ddpm_lab.core.sampling import SAMPLERS

if __package__:  # python -m benchmarks.bench_sampler_nfe
    from . import harness
else:  # python benchmarks/bench_sampler_nfe.py: its folder, benchmarks/, comes first on the import path
    import harness

STEPS = [5, 10, 15, 20, 25, 50, 100]
TARGETS = {"oracle": 20, "eq12": 25}  # NFE within which some sampler should be inside on W1 and KS


def min_nfe(table: pd.DataFrame) -> dict:
    """{(sampler, model): the smallest NFE inside the band on W1 and KS, or None}."""
    out = {}
    for (sampler, model), part in table.groupby(["sampler", "model"], sort=False):
        inside = part[part["w1_inside"] & part["ks_inside"]]
        out[sampler, model] = int(inside["nfe_per_draw"].min()) if len(inside) else None
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=harness.PARAMS, type=Path)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/sampler_nfe.json")
    args = ap.parse_args(argv)
    sweep = {"enabled": True, "samplers": list(SAMPLERS), "steps": STEPS, "hybrid_t0": []}
    params = harness.override(harness.read_params(args.params), harness.dotted({"sampler_tradeoff": sweep}))
    details = harness.RESULTS / "sampler_nfe.csv"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        done = harness.run_stage(
            "sampler_tradeoff",
            *("--params", str(harness.write_params(t / "params.yaml", params))),
            *("--metrics-out", str(t / "head.json"), "--details-out", str(details)),
            *("--figure-out", str(harness.ROOT / "docs" / "figures" / "sampler_nfe.png")),
            *("--hybrid-out", str(t / "hybrid.csv"), "--hybrid-figure-out", str(t / "hybrid.png")),
            stdout=subprocess.DEVNULL,
            stderr=None,
        )
        if done.proc.returncode != 0:
            raise SystemExit("stages.sampler_tradeoff failed; rerun it by hand to see why")
    found = min_nfe(pd.read_csv(details))
    rows = harness.Rows(widths=(70, 28), echo=False)
    for model, target in TARGETS.items():
        for sampler in SAMPLERS:
            nfe = found.get((sampler, model))
            measured = "none of " + ", ".join(map(str, STEPS)) if nfe is None else str(nfe)
            rows.add(f"{model}: smallest NFE inside the band on W1 and KS, {sampler}", measured)
        best = min((n for (s, m), n in found.items() if m == model and n is not None), default=None)
        rows.add(
            f"{model}: some sampler inside on W1 and KS",
            "none" if best is None else f"at {best} NFE",
            f"<= {target} NFE",
            best is not None and best <= target,
        )
    rows.add("stage sampler_tradeoff, these samplers and steps: wall time", f"{done.seconds:.0f} s")
    with harness.study_copy() as study:
        study.set_params(
            {"diffusion.variance": "optimal", **harness.dotted({"sampler_tradeoff": {**sweep, "samplers": ["ddpm"]}})}
        )
        seconds = study.repro("sampler_tradeoff")
        optimal = min_nfe(pd.read_csv(study.path / "metrics" / "details" / "sampler_tradeoff.csv"))
    for model in TARGETS:
        nfe = optimal.get(("ddpm", model))
        measured = "none of " + ", ".join(map(str, STEPS)) if nfe is None else str(nfe)
        who = model if model == "oracle" else f"{model} (trained under it)"
        rows.add(f"{who}: smallest NFE inside the band on W1 and KS, ddpm with variance optimal", measured)
    rows.add("a clean copy with variance optimal, dvc repro sampler_tradeoff: wall time", f"{seconds:.0f} s")
    for r in rows:
        print(f"  {r.what:<70} {r.measured:<28} {r.target}")
    if args.write:
        harness.write_results(harness.RESULTS / "sampler_nfe.json", {"benchmark": "sampler_nfe", "rows": rows})


if __name__ == "__main__":
    main()
