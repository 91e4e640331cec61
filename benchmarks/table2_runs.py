"""The runs of benchmarks/bench_table2.py: each row of Ho et al.'s Table 2 (VARIANTS, IMAGE_VARIANTS)
trained for one replicate and measured, on the mixture in-process and exactly (one_run), on the
digits through the pipeline in a clean copy of the study (image_runs)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import torch

from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.gmm import propagate
from ddpm_lab.gmm.metrics import exact_reference
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.train import train_on_mixture
from ddpm_lab.gmm.variance import diffusion_for, model_bound, per_xt_terms
from ddpm_lab.runtime.seeds import fold_seed
from ddpm_lab.runtime.stats import band, in_band

if __package__:  # benchmarks.table2_runs, as python -m benchmarks.bench_table2 imports it
    from . import harness
else:  # table2_runs, as python benchmarks/bench_table2.py imports it (its folder first on the import path)
    import harness

VARIANTS = {
    "eps, L_simple, fixed beta_t": {"train_eq12.weighting": "eq14"},
    "eps, true bound, fixed beta_t": {"train_eq12.weighting": "eq12"},
    "eps, true bound, fixed beta~_t": {"train_eq12.weighting": "eq12", "diffusion.variance": "beta_tilde"},
    "x0 (mu~), true bound, fixed beta_t": {"train_eq12.weighting": "eq12", "model.prediction": "x0"},
    "eps, learned Sigma, L_hybrid": {"train_eq12.weighting": "hybrid", "model.learned_variance": True},
    "eps, learned Sigma, L_hybrid, preconditioned L_vlb": {
        "train_eq12.weighting": "hybrid",
        "model.learned_variance": True,
        "train_eq12.hybrid_vlb": "preconditioned",
    },
    "eps, L_simple, optimal per t": {"train_eq12.weighting": "eq14", "diffusion.variance": "optimal"},
}
# The digits: the same rows, in the image branch's sections, but the optimal variance (the image branch
# has no exact noise error to build it from).
IMAGE_SECTIONS = {"train_eq12": "images_train", "diffusion": "images_diffusion", "model": "images_model"}
IMAGE_VARIANTS = {
    name: {f"{IMAGE_SECTIONS[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in over.items()}
    for name, over in VARIANTS.items()
    if over.get("diffusion.variance") != "optimal"
}
# One torch thread per copy, so that --jobs copies share the cores without oversubscribing them (threads are
# part of the result: every row runs with the same count, which the params.yaml default, 2, is not).
IMAGE_THREADS = {"images_train.threads": 1, "images_sample.threads": 1}
IMAGE_METRICS = ("bpd", "fd_ratio", "kid")
BASELINE = "eps, L_simple, fixed beta_t"
LEARNED, FIXED = "eps, learned Sigma, L_hybrid", "eps, true bound, fixed beta_t"
PRECONDITIONED = "eps, learned Sigma, L_hybrid, preconditioned L_vlb"
STEPS = [10, 20, 50, 100, 200, 500, 1000]  # respaced DDPM's S, ascending: the first inside the band is nfe
METRICS = ("bound_gap", "exact_kl", "w1_ratio", "ks_ratio", "nfe")


def train_variant(params: dict, name: str, replicate: int) -> dict:
    """Train the variant's Eq. 12-class model for one replicate, as stage train_eq12 would on these
    params: {"read" (section -> config), "mixture", "diffusion", "mcfg", "run", "eps_model", "train_s"}."""
    torch.set_num_threads(1)
    params = harness.override(params, {**VARIANTS[name], "replicate": replicate})
    gmm_params.check_all(params)  # the coupled params, as the pipeline checks them
    read = lambda section, **fixed: gmm_params.read(params, section, **fixed)  # noqa: E731
    gcfg, dcfg, tcfg = read("gmm"), read("diffusion"), read("train_eq12")
    mixture = GaussianMixture(gcfg.weights, gcfg.means, gcfg.stds)
    data = mixture.sample(gcfg.n_train, np.random.default_rng(gcfg.seed))  # stage generate_gmm's draws
    mcfg = read("model", data_dim=mixture.dim)
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, replicate))
    diffusion = diffusion_for(dcfg, mixture)
    t0 = time.perf_counter()
    run = train_on_mixture("eq12", diffusion, mcfg, tcfg, data.astype(np.float32), mixture)
    eps_model = as_eps_model(run.ema, mcfg.prediction, diffusion.np["alphas_cumprod"])
    out = {"read": read, "mixture": mixture, "diffusion": diffusion, "mcfg": mcfg, "run": run}
    return out | {"eps_model": eps_model, "train_s": time.perf_counter() - t0}


def floor_bands(read, mixture: GaussianMixture) -> dict:
    """{"w1", "ks": the band (runtime.stats.band) of the floor compare_dist judges by}: exact samples
    of the pooled sample.n x seeds draws (read: section -> config)."""
    scfg, ccfg = read("sample"), read("compare_dist")
    ref = exact_reference(
        mixture, len(scfg.seeds) * scfg.n, ccfg.floor_draws, ccfg.directions, np.random.default_rng(ccfg.seed)
    )
    return {k: band(ref["floors"][k]) for k in ("w1", "ks")}


def one_run(params: dict, name: str, replicate: int, nfe: bool = True) -> dict:
    """Train the variant's Eq. 12-class model for one replicate and measure it exactly (nfe: also
    respaced DDPM's steps into the band)."""
    t0 = time.perf_counter()
    trained = train_variant(params, name, replicate)
    mixture, diffusion, mcfg, run, eps_model = (
        trained[k] for k in ("mixture", "diffusion", "mcfg", "run", "eps_model")
    )
    train_s = trained["train_s"]
    if mcfg.learned_variance:
        bound, bound_err = model_bound(diffusion, mixture, eps_model)
    else:  # the bound is affine in the per-t errors: the oracle's plus sum_t w_t e_t (measured by training)
        e = run.eps_error
        bound = diffusion.expected_bound((e["mmse"] + e["eps_error"]).to_numpy(), mixture.second_moment(), mixture.dim)
        bound_err = float((diffusion.mse_weights("bound") * (e["mmse_err"] + e["eps_error_err"])).sum())
    terms, terms_err = per_xt_terms(diffusion, mixture, diagonal=True)
    best = float(diffusion.prior_kl(mixture.second_moment(), mixture.dim)) + float(terms.sum())
    bands = floor_bands(trained["read"], mixture)
    full, _ = propagate.measures(diffusion, eps_model, SamplerConfig(), mixture)
    out = full["output"]
    record = {
        "variant": name,
        "replicate": replicate,
        "bound": bound,
        "bound_gap": bound - best,
        "bound_gap_err": bound_err + float(terms_err.sum()),
        "exact_kl": out["kl"],
        "w1_ratio": out["w1"] / bands["w1"]["median"],
        "ks_ratio": out["ks"] / bands["ks"]["median"],
        "mode_err": out["mode_err"],
        "grid_err": max(out["kl_err"], out["w1_err"] / bands["w1"]["median"], out["ks_err"] / bands["ks"]["median"]),
        "train_seconds": train_s,
    }
    for S in (s for s in STEPS if nfe and s <= diffusion.T):
        o = propagate.measures(diffusion, eps_model, SamplerConfig(steps=S), mixture)[0]["output"]
        if in_band(bands["w1"], o["w1"]) and in_band(bands["ks"], o["ks"]):
            record["nfe"] = S
            break
    record["seconds"] = time.perf_counter() - t0
    print(
        f"  {name}, replicate {replicate}: bound gap {record['bound_gap']:.5f} nats, KL {record['exact_kl']:.2e}, "
        f"W1 x{record['w1_ratio']:.2f}, KS x{record['ks_ratio']:.2f}, nfe {record.get('nfe')} "
        f"({record['seconds']:.0f} s)",
        flush=True,
    )
    return record


def image_runs(jobs: list[tuple[str, int]]) -> list[dict]:
    """The image rows' runs, one after another in a clean copy of the study: each sets its params
    (the variant's overrides, IMAGE_THREADS and `replicate`) and runs `dvc repro evaluate_images`
    there, so every number is the pipeline's own (metrics/images.json)."""
    out = []
    with harness.study_copy(prefix="bench_table2_") as study:
        # Study.set_params edits the copy's current params.yaml: every key a row changes is set each run,
        # to the row's value or back to params.yaml's, so no row inherits the previous run's
        defaults = harness.read_params()
        keys = {k for over in IMAGE_VARIANTS.values() for k in over}
        reset = {k: defaults[k.split(".")[0]][k.split(".")[1]] for k in keys}
        for name, r in jobs:
            study.set_params({**reset, **IMAGE_VARIANTS[name], **IMAGE_THREADS, "replicate": r})
            seconds = study.repro("evaluate_images")
            m = json.loads((study.path / "metrics" / "images.json").read_text())
            out.append({"variant": name, "replicate": r, **m, "seconds": seconds})
            print(
                f"  {name}, replicate {r}: {m['bpd']:.4f} +- {m['bpd_se']:.4f} bits/dim, FD x{m['fd_ratio']:.2f} "
                f"(p95 x{m['fd_p95']:.2f}), KID {m['kid']:.2f} (p95 {m['kid_p95']:.2f}) ({seconds:.0f} s)",
                flush=True,
            )
    return out
