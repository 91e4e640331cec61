"""Benchmark of the reverse variance, exact: the expected bound (Eq. 5, nats) of the mixture's
optimal mean under each variance (beta_t, beta~_t, the optimal per t of Bao et al. 2022, Theorem 1,
and the optimal per x_t), for ancestral sampling on S respaced steps of the linear and cosine
schedules of params.yaml's T (ddpm_lab.gmm.variance); and the distribution that respaced
ancestral sampling with the exact eps* outputs under the three variances a sampler can use, computed
exactly (ddpm_lab.gmm.propagate: KL(q || p) and W1 against the mixture, each with its grid error).
Quadrature over the exact q(x_t) in 1-D (each bound's error is the quadrature's estimate).
With --model (default models/eq12.pt, its metrics/details/eps_error_*.csv beside): the trained
model's exact bound under each variance, Analytic-DPM's estimate from the model (Bao et al. 2022)
among them (ddpm_lab.gmm.variance.model_bounds).

    python benchmarks/bench_variance.py [--steps 10 25 50 100 1000] [--write benchmarks/results/variance.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.gmm.mixture import GaussianMixture, GMMConfig
from ddpm_lab.core.sampling import SamplerConfig, timestep_subsequence
from ddpm_lab.gmm.mixture import OracleEps
from ddpm_lab.gmm.propagate import measures
from ddpm_lab.gmm.artifacts import load_eps_model, read_eps_error
from ddpm_lab.gmm.variance import CHOICES, analytic_dpm_mmse, diffusion_for, model_bounds, oracle_bounds, respaced
from ddpm_lab.runtime.io import read_array
from ddpm_lab.runtime.params import from_section

if __package__:  # python -m benchmarks.bench_variance
    from . import harness
else:  # python benchmarks/bench_variance.py
    import harness

SAMPLED = ("beta", "beta_tilde", "optimal")  # the variances a sampler can use (diffusion.variance)
SCHEDULES = {"linear": {"beta_start": 0.0001, "beta_end": 0.02}, "cosine": {"beta_start": None, "beta_end": None}}


def trained_model(args, params: dict, mixture: GaussianMixture, rows: harness.Rows) -> dict:
    """The trained model's exact bound under each variance (model_bounds), on params.yaml's diffusion."""
    dcfg = from_section(DiffusionConfig, params, "diffusion", str(args.params))
    name = args.model.stem
    table = read_eps_error(args.model.parent.parent / "metrics" / "details" / f"eps_error_{name}.csv", dcfg.T)
    diffusion = dcfg.build() if dcfg.variance != "optimal" else diffusion_for(dcfg, mixture)
    model = load_eps_model(args.model, dcfg)
    data = read_array(args.model.parent.parent / "data" / "gmm" / "train.npy", ndim=2)
    estimate, se = analytic_dpm_mmse(diffusion, model, data, args.per_t, np.random.default_rng(0))
    error = (table["mmse"] + table["eps_error"]).to_numpy()
    by_steps = []
    for S in args.steps:
        tau = timestep_subsequence(dcfg.T, S) - 1
        bounds = model_bounds(respaced(diffusion, S), mixture, error[tau], estimate[tau])
        by_steps.append({"steps": S, **bounds})
        rows.add(
            f"{name}, S = {S}: exact bound (nats) by variance",
            ", ".join(f"{k} {v:.4f}" for k, v in bounds.items()),
            "its own optimum least",
            bounds["optimal (model)"] == min(bounds.values()),
        )
    return {
        "model": str(args.model.relative_to(harness.ROOT))
        if args.model.is_relative_to(harness.ROOT)
        else str(args.model),
        "schedule": dcfg.schedule,
        "T": dcfg.T,
        "per_t": args.per_t,
        "estimate_max_se": float(se.max()),
        "estimate_max_abs_gap": float(np.max(np.abs(estimate - table["mmse"].to_numpy()))),
        "by_steps": by_steps,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 1000], help="respaced step counts S")
    ap.add_argument("--params", type=Path, default=harness.PARAMS)
    ap.add_argument("--model", type=Path, default=harness.ROOT / "models" / "eq12.pt", help="a trained model")
    ap.add_argument("--per-t", type=int, default=2000, help="rows per t of Analytic-DPM's estimate")
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/variance.json)")
    args = ap.parse_args(argv)
    params = harness.read_params(args.params)
    gmm = from_section(GMMConfig, params, "gmm", str(args.params))
    mixture = GaussianMixture(gmm.weights, gmm.means, gmm.stds)
    t0, rows, table, exact = time.perf_counter(), harness.Rows(widths=(44, 60)), [], []
    for schedule, betas in SCHEDULES.items():
        section = {**params["diffusion"], "schedule": schedule, **betas}
        diffusion = from_section(DiffusionConfig, {"diffusion": section}, "diffusion", str(args.params)).build()
        for S in args.steps:
            if not 1 <= S <= diffusion.T:
                ap.error(f"--steps {S}: expected 1 <= S <= diffusion.T = {diffusion.T}")
            bounds = oracle_bounds(respaced(diffusion, S), mixture)
            record = {"schedule": schedule, "steps": S, **{c: bounds[c]["bound"] for c in CHOICES}}
            record["err"] = max(bounds[c]["err"] for c in CHOICES)
            table.append(record)
            out = {"schedule": schedule, "steps": S}
            for variance in SAMPLED:
                d = diffusion_for(DiffusionConfig(**{**section, "variance": variance}), mixture)
                m, _ = measures(
                    d, OracleEps(mixture, d.np["alphas_cumprod"]), SamplerConfig(sampler="ddpm", steps=S), mixture
                )
                o = m["output"]
                out |= {
                    f"{variance}_kl": o["kl"],
                    f"{variance}_w1": o["w1"],
                    f"{variance}_err": max(o["kl_err"], o["w1_err"]),
                }
            exact.append(out)
            print(
                f"  {schedule}, S = {S}: exact output of ddpm with eps*, KL / W1: "
                + ", ".join(f"{v} {out[v + '_kl']:.4f} / {out[v + '_w1']:.4f}" for v in SAMPLED),
                flush=True,
            )
            ordered = (
                bounds["optimal_xt"]["bound"]
                <= bounds["optimal_t"]["bound"]
                <= min(bounds["beta"]["bound"], bounds["beta_tilde"]["bound"])
            )
            rows.add(
                f"{schedule}, S = {S}: bound (nats) beta / beta~ / opt t / opt x_t",
                " / ".join(f"{bounds[c]['bound']:.4f}" for c in CHOICES) + f" (+- {record['err']:.0e})",
                "opt x_t <= opt t <= min(beta, beta~)",
                ordered,
            )
    trained = trained_model(args, params, mixture, rows)
    print(f"bench_variance: {len(table)} rows in {time.perf_counter() - t0:.0f} s")
    if args.write:
        doc = {
            "benchmark": "variance",
            "cpus": os.cpu_count(),
            "T": params["diffusion"]["T"],
            "rows": rows,
            "table": table,
            "exact_output": exact,
            "trained_model": trained,
        }
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
