"""Every sampler at low NFE: the network evaluations per draw at which the exact eps* (the oracle)
and the Eq. 12 model enter the floor's band, on the default study.

Runs stage sampler_tradeoff (off by default) on params.yaml with every sampler of
ddpm_lab.core.sampling.SAMPLERS and steps S in STEPS (a temporary params copy; the hybrid
diagnostic off; the tracked outputs untouched), on models/ and data/gmm/ of the current study.
Writes the details table to benchmarks/results/sampler_nfe.csv, the figure to
docs/figures/sampler_nfe.png and, with --write, benchmarks/results/sampler_nfe.json: per sampler
and eps-predictor, the smallest NFE whose W1 and KS ratios both lie inside the floor's band (at
or below its p95: runtime.stats.in_band).

Then respaced DDPM by reverse variance, exactly: each chain's output distribution propagated on a
grid (ddpm_lab.gmm.propagate, no sampling noise) for S in EXACT_STEPS and judged against the same
band, each value with the grid's error estimate added (inside only if it stays inside). The
oracle eps* under fixed beta_t, fixed beta~_t, Analytic-DPM's optimal per-t variance
(Bao et al. 2022, exact for the mixture) and the best Gaussian kernel per x_t
(ddpm_lab.gmm.variance.OptimalKernelOracle: each step's exact Var(x_s | x_t)); the study's Eq. 12
model under its own variance and under Analytic-DPM's variance estimated from it and the training
data (variance.analytic_dpm_mmse); and two learned-Sigma models (L_hybrid, kl and preconditioned,
replicate 0, trained here as benchmarks/table2_runs.py trains them). Writes
benchmarks/results/sampler_nfe_variance.csv (every ratio) and docs/figures/sampler_nfe_variance.png.

    .venv/bin/python benchmarks/bench_sampler_nfe.py --write
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SAMPLERS, SamplerConfig
from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.gmm import propagate
from ddpm_lab.gmm.artifacts import load_eps_model, load_mixture
from ddpm_lab.gmm.mixture import OracleEps
from ddpm_lab.gmm.variance import OptimalKernelOracle, analytic_dpm_mmse, diffusion_for
from ddpm_lab.runtime.stats import in_band

if __package__:  # python -m benchmarks.bench_sampler_nfe
    from . import harness, table2_runs
else:  # python benchmarks/bench_sampler_nfe.py: its folder, benchmarks/, comes first on the import path
    import harness
    import table2_runs

STEPS = [5, 10, 15, 20, 25, 50, 100]
EXACT_STEPS = [5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100]
LEARNED_ROWS = {"L_hybrid": table2_runs.LEARNED, "L_hybrid, preconditioned L_vlb": table2_runs.PRECONDITIONED}
ANALYTIC_DPM_ROWS = 2000  # training rows per t of Analytic-DPM's estimate from the Eq. 12 model
TARGETS = {"oracle": 20, "eq12": 25}  # NFE within which some sampler should be inside on W1 and KS


def min_nfe(table: pd.DataFrame) -> dict:
    """{(sampler, model): the smallest NFE inside the band on W1 and KS, or None}."""
    out = {}
    for (sampler, model), part in table.groupby(["sampler", "model"], sort=False):
        inside = part[part["w1_inside"] & part["ks_inside"]]
        out[sampler, model] = int(inside["nfe_per_draw"].min()) if len(inside) else None
    return out


def by_variance(params_path: Path) -> tuple[pd.DataFrame, float]:
    """Respaced DDPM's exact W1 and KS ratios (to the floor's median) for every model and reverse
    variance at every S of EXACT_STEPS, and whether both are inside the band; and the seconds taken."""
    t0 = time.perf_counter()
    params = harness.read_params(params_path)
    read = lambda section, **fixed: gmm_params.read(params, section, **fixed)  # noqa: E731
    dcfg = read("diffusion")
    mixture = load_mixture(harness.ROOT / "data" / "gmm" / "mixture.json")
    diffusion, bands = diffusion_for(dcfg, mixture), table2_runs.floor_bands(read, mixture)
    oracle = OracleEps(mixture, diffusion.np["alphas_cumprod"])
    eq12 = load_eps_model(harness.ROOT / "models" / "eq12.pt", dcfg)
    x0 = np.load(harness.ROOT / "data" / "gmm" / "train.npy")
    estimate, _ = analytic_dpm_mmse(diffusion, eq12, x0, ANALYTIC_DPM_ROWS, np.random.default_rng(0))
    betas = diffusion.np["betas"][1:]
    with_variance = lambda v, m=None: GaussianDiffusion(betas, v, m, mixture.dim if m is not None else None)  # noqa: E731
    learned = {k: table2_runs.train_variant(params, name, 0) for k, name in LEARNED_ROWS.items()}
    chains = {  # (model, variance): (diffusion, eps-model for S)
        ("oracle", "beta"): (with_variance("beta"), lambda S: oracle),
        ("oracle", "beta~"): (with_variance("beta_tilde"), lambda S: oracle),
        ("oracle", "optimal per t"): (
            diffusion_for(dataclasses.replace(dcfg, variance="optimal"), mixture),
            lambda S: oracle,
        ),
        ("oracle", "optimal per x_t"): (
            diffusion,
            lambda S: OptimalKernelOracle(mixture, diffusion, SamplerConfig(steps=S)),
        ),
        ("eq12", dcfg.variance): (diffusion, lambda S: eq12),
        ("eq12", "Analytic-DPM estimate"): (with_variance("optimal", estimate), lambda S: eq12),
        **{("learned Sigma", k): (run["diffusion"], lambda S, run=run: run["eps_model"]) for k, run in learned.items()},
    }
    out = []
    for (model, variance), (diff, eps_for) in chains.items():
        for S in EXACT_STEPS:
            o = propagate.measures(diff, eps_for(S), SamplerConfig(steps=S), mixture)[0]["output"]
            w1, ks = o["w1"] / bands["w1"]["median"], o["ks"] / bands["ks"]["median"]
            # inside only with the grid's error estimate added: a ratio whose error spans the band's edge decides nothing
            inside = in_band(bands["w1"], o["w1"] + o["w1_err"]) and in_band(bands["ks"], o["ks"] + o["ks_err"])
            out.append(
                {
                    "model": model,
                    "variance": variance,
                    "steps": S,
                    "w1_ratio": w1,
                    "ks_ratio": ks,
                    "kl": o["kl"],
                    "grid_err": max(o["w1_err"] / bands["w1"]["median"], o["ks_err"] / bands["ks"]["median"]),
                    "inside": inside,
                    "w1_p05": bands["w1"]["p05"] / bands["w1"]["median"],
                    "w1_p95": bands["w1"]["p95"] / bands["w1"]["median"],
                }
            )
    return pd.DataFrame(out), time.perf_counter() - t0


def figure(table: pd.DataFrame, path: Path) -> None:
    """W1 ratio against S, one line per (model, variance; solid: the oracle), the floor's band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for (model, variance), part in table.groupby(["model", "variance"], sort=False):
        style = "-" if model == "oracle" else "--"
        ax.plot(part["steps"], part["w1_ratio"], style, marker="o", ms=3, label=f"{model}, {variance}")
    ax.axhspan(
        table["w1_p05"].iloc[0], table["w1_p95"].iloc[0], color="grey", alpha=0.2, label="the floor's band (p5-p95)"
    )
    ax.set(xscale="log", yscale="log", xlabel="respaced DDPM steps S (network evaluations)")
    ax.set(ylabel="W1 / floor median (exact)", title="Respaced DDPM by reverse variance: the exact output's W1")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


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
    exact, seconds = by_variance(args.params)
    exact.to_csv(harness.RESULTS / "sampler_nfe_variance.csv", index=False)
    figure(exact, harness.ROOT / "docs" / "figures" / "sampler_nfe_variance.png")
    for (model, variance), part in exact.groupby(["model", "variance"], sort=False):
        inside = part[part["inside"]]
        nfe = int(inside["steps"].min()) if len(inside) else None
        measured = "none of " + ", ".join(map(str, EXACT_STEPS)) if nfe is None else str(nfe)
        target = "<= 50" if model == "oracle" and variance.startswith("optimal") else ""
        met = (nfe is not None and nfe <= 50) if target else None
        rows.add(f"{model}, respaced ddpm, exact, {variance}: smallest S inside", measured, target, met)
    rows.add("respaced ddpm by variance, exact (incl. training the learned Sigma): wall time", f"{seconds:.0f} s")
    for r in rows:
        print(f"  {r.what:<70} {r.measured:<28} {r.target}")
    if args.write:
        harness.write_results(harness.RESULTS / "sampler_nfe.json", {"benchmark": "sampler_nfe", "rows": rows})


if __name__ == "__main__":
    main()
