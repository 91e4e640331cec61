"""Every sampler at low NFE: the network evaluations per draw at which the exact eps* (the oracle)
and the Eq. 12 model enter the floor's band, on the default study.

Runs stage sampler_tradeoff (off by default) on params.yaml with every sampler of
ddpm_lab.core.sampling.SAMPLERS and steps S in STEPS (a temporary params copy; the hybrid
diagnostic off; the tracked outputs untouched), on models/ and data/gmm/ of the current study.
Writes the details table to benchmarks/results/sampler_nfe.csv, the figure to
docs/figures/sampler_nfe.png and, with --write, benchmarks/results/sampler_nfe.json: per sampler
and eps-predictor, the smallest NFE whose W1 and KS ratios both lie inside the floor's 5-95% band.

    .venv/bin/python benchmarks/bench_sampler_nfe.py --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from ddpm_lab.core.sampling import SAMPLERS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
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
    ap.add_argument("--params", default=ROOT / "params.yaml", type=Path)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/sampler_nfe.json")
    args = ap.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    params["sampler_tradeoff"].update(enabled=True, samplers=list(SAMPLERS), steps=STEPS, hybrid_t0=[])
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "stages.sampler_tradeoff", "--params", str(t / "params.yaml")]
        cmd += ["--metrics-out", str(t / "head.json"), "--details-out", str(RESULTS / "sampler_nfe.csv")]
        cmd += ["--figure-out", str(ROOT / "docs" / "figures" / "sampler_nfe.png")]
        cmd += ["--hybrid-out", str(t / "hybrid.csv"), "--hybrid-figure-out", str(t / "hybrid.png")]
        if subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL).returncode != 0:
            raise SystemExit("stages.sampler_tradeoff failed; rerun it by hand to see why")
        wall = time.perf_counter() - start
    found = min_nfe(pd.read_csv(RESULTS / "sampler_nfe.csv"))
    rows = []
    for model, target in TARGETS.items():
        for sampler in SAMPLERS:
            nfe = found.get((sampler, model))
            rows.append(
                {
                    "what": f"{model}: smallest NFE inside the band on W1 and KS, {sampler}",
                    "measured": "none of " + ", ".join(map(str, STEPS)) if nfe is None else str(nfe),
                    "target": "",
                    "met": None,
                }
            )
        best = min((n for (s, m), n in found.items() if m == model and n is not None), default=None)
        rows.append(
            {
                "what": f"{model}: some sampler inside on W1 and KS",
                "measured": "none" if best is None else f"at {best} NFE",
                "target": f"<= {target} NFE",
                "met": best is not None and best <= target,
            }
        )
    rows.append(
        {
            "what": "stage sampler_tradeoff, these samplers and steps: wall time",
            "measured": f"{wall:.0f} s",
            "target": "",
            "met": None,
        }
    )
    for r in rows:
        print(f"  {r['what']:<70} {r['measured']:<28} {r['target']}")
    if args.write:
        (RESULTS / "sampler_nfe.json").write_text(
            json.dumps({"benchmark": "sampler_nfe", "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
