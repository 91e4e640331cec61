"""Stage compare_dist: judge each sampler against the exact mixture, every number with its error.

For eq12, eq3 and the oracle eps*:
- the exact expected Eq. 5 bound and its gap to the oracle's, sum_t w_t e_t, from the per-t
  excess errors e_t that the training stages measured on the saved models (quadrature in 1-D,
  Monte Carlo with its standard error for D > 1), beside the held-out paired Monte-Carlo
  estimate of the same gap, which must agree with it within its standard error;
- W1 and KS against the exact CDF (D > 1: per coordinate, plus sliced W1 over random
  directions) of the sampling seeds pooled, each as a ratio to the median of the same
  statistic on exact samples of the same n, beside that floor's 5-95% band;
- recovered mode weights against what the assignment rule gives exact samples, beside the
  multinomial floor of that error.
Params: `diffusion`, `compare_dist`. Writes <out>/dist_<name>.json (the headline numbers, DVC
metrics) and <out>/details/dist_<name>.json (everything else).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ddpm_lab.gmm.params import CompareConfig
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import DataError, DiffusionConfig, from_section
from ddpm_lab.gmm.exact import heldout_gap, weighted_sum
from ddpm_lab.gmm.mixture import OracleEps
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, read_json, write_outputs
from ddpm_lab.gmm.metrics import compare_samples, exact_reference
from ddpm_lab.gmm.artifacts import MODELS, load_eps_model, load_mixture, read_eps_error
from ddpm_lab.runtime.torch_setup import use_threads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--samples", default="data/samples", type=Path)
    ap.add_argument("--eps-error", default="metrics/details", type=Path,
                    help="folder of the training stages' eps_error_<model>.csv")
    ap.add_argument("--out", default="metrics", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion", args.params)
    cfg = from_section(CompareConfig, params, "compare_dist", args.params)
    use_threads(cfg.threads)
    mixture = load_mixture(args.data / "mixture.json")
    entropy = float(read_json(args.data / "mixture.json")["entropy"])
    heldout = read_array(args.data / "heldout.npy", ndim=2)
    if cfg.nll_n:
        heldout = heldout[:cfg.nll_n]
    diffusion = dcfg.build()
    models = {name: load_eps_model(args.models / f"{name}.pt", dcfg) for name in MODELS}
    models["oracle"] = OracleEps(mixture, diffusion.np["alphas_cumprod"])
    samples = {name: read_array(args.samples / f"{name}.npz", ndim=3, key="x0") for name in models}
    shapes = {x.shape for x in samples.values()}
    if len(shapes) != 1 or any(x.shape[2] != mixture.dim for x in samples.values()):
        raise DataError(f"{args.samples}: sample arrays of shapes {[x.shape for x in samples.values()]}: "
                        f"expected (S, n, {mixture.dim}) with one S and n for all samplers")
    n_seeds, n = shapes.pop()[:2]

    # The exact expected bound (Eq. 5) of each saved model: the oracle's plus sum_t w_t e_t.
    tables = {name: read_eps_error(args.eps_error / f"eps_error_{name}.csv", dcfg.T) for name in MODELS}
    w, mc = diffusion.mse_weights("bound"), mixture.dim > 1
    mmse = tables["eq12"][["mmse", "mmse_err"]].to_numpy()
    oracle_bound = diffusion.expected_bound(mmse[:, 0], mixture.second_moment(), mixture.dim)
    oracle_bound_err = weighted_sum(w, mmse[:, 0], mmse[:, 1], mc)[1]
    gaps = {name: weighted_sum(w, tables[name]["eps_error"].to_numpy(), tables[name]["eps_error_err"].to_numpy(), mc)
            for name in MODELS}
    gaps["oracle"] = (0.0, 0.0)

    # The same gap estimated on held-out data, paired (same x_t and eps draws for every model).
    x0 = torch.as_tensor(heldout, dtype=torch.float32)
    nll = {name: diffusion.nll_bound_rows(m, x0, cfg.nll_batch, cfg.seed) for name, m in models.items()}

    # Floors of the sampled statistics: exact samples of the pooled size S * n.
    reference = exact_reference(mixture, n_seeds * n, cfg.floor_draws, cfg.directions, np.random.default_rng(cfg.seed))

    outputs = {}
    for name in models:
        headline, details = compare_samples(samples[name], mixture, **reference)
        gap, gap_err = gaps[name]
        held = {"n": int(x0.shape[0]), **heldout_gap(nll[name], nll["oracle"], gap, gap_err)}  # oracle: 0, z None
        outputs[args.out / f"dist_{name}.json"] = json_bytes({"bound_gap": gap, "gap_err": gap_err, **headline})
        outputs[args.out / "details" / f"dist_{name}.json"] = json_bytes({
            "model": name, "n_per_seed": int(n), "n_seeds": int(n_seeds), "entropy": entropy,
            "expected_bound": {"model": oracle_bound + gap, "oracle": oracle_bound, "gap_to_oracle": gap,
                               "gap_err": gap_err, "oracle_err": oracle_bound_err,
                               "method": "Monte Carlo (standard errors)" if mc else
                               "Gauss-Kronrod quadrature over the exact q(x_t), panels per component (error: sum |K - G| + allowances)"},
            "heldout_paired_estimate": held, **details})
        print(f"compare_dist: {name}: bound gap {gap:.5f} +- {gap_err:.1g} nats (held-out {held['gap_to_oracle']:.5f}"
              f" +- {held['gap_to_oracle_se']:.5f}); W1 x{headline['w1_ratio']:.2f} (floor p95 x{headline['w1_p95']:.2f}),"
              f" KS x{headline['ks_ratio']:.2f} (p95 x{headline['ks_p95']:.2f}), mode error {headline['mode_err']:.4f}"
              f" (p95 {headline['mode_p95']:.4f})")
    write_outputs(outputs)


if __name__ == "__main__":
    run_stage(main)
