"""Stage plot: the ten figures of the GMM study into <out>/.

Reads the mixture and training draws, the forward process (params `diffusion`), the loss
histories and floors, the sampler draws and trajectories, the distribution metrics and the
per-timestep excess errors of the saved models.
Params: `diffusion`, `plot` (plot.forward_times are fractions of diffusion.T, so any T works).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import torch

from ddpm_lab.gmm import figures as plots
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.runtime.io import load_params, png_writer, read_array, read_csv, read_json, read_sampler, write_outputs
from ddpm_lab.gmm.artifacts import load_mixture, read_eps_error, read_exact_curve
from ddpm_lab.gmm.variance import diffusion_for
from ddpm_lab.gmm.names import ALL_MODELS, MODELS, ORACLE


def main(argv=None) -> None:
    matplotlib.use("Agg")  # process-wide: chosen once, here, at the stage's entry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--samples", default="data/samples", type=Path)
    ap.add_argument("--metrics", default="metrics", type=Path)
    ap.add_argument("--out", default="images", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "plot", args.params)
    mixture = load_mixture(args.data / "mixture.json")
    train = read_array(args.data / "train.npy", ndim=2)
    diffusion = diffusion_for(dcfg, mixture)

    figs = {"gmm_dist": plots.gmm_dist(mixture, train, cfg.bins)}
    x0 = torch.as_tensor(train[: cfg.n_forward_paths])
    paths = diffusion.q_trajectory(x0, torch.Generator().manual_seed(cfg.seed)).numpy()
    figs["diffusion_process"] = plots.diffusion_process(
        mixture, diffusion.np["alphas_cumprod"], paths, cfg.forward_steps(dcfg.T), cfg.bins
    )
    oracle_x0s = read_array(args.samples / f"{ORACLE}.npz", ndim=3, key="x0")
    exact = {  # the propagated output distributions (compare_dist; no rows for D > 1)
        name: read_exact_curve(args.metrics / "details" / f"exact_dist_{name}.csv", mixture.dim) for name in ALL_MODELS
    }
    for name in MODELS:
        npz = args.samples / f"{name}.npz"
        x0s = read_array(npz, ndim=3, key="x0")
        t, path = read_array(npz, ndim=1, key="t"), read_array(npz, ndim=3, key="path")
        figs[f"reverse_sampling_{name}"] = plots.reverse_sampling(
            name, mixture, t, path, x0s[0], cfg.bins, read_sampler(npz)
        )
        headline = read_json(args.metrics / f"dist_{name}.json")
        details = read_json(args.metrics / "details" / f"dist_{name}.json")
        figs[f"dist_comp_{name}"] = plots.dist_comp(
            name,
            mixture,
            x0s.reshape(-1, x0s.shape[-1]),  # the seeds pooled: the n of every number in the figure
            oracle_x0s.reshape(-1, oracle_x0s.shape[-1]),
            headline,
            details,
            cfg.bins,
            exact=exact,
        )
        fit = read_json(args.metrics / "details" / f"train_{name}.json")
        figs[f"{name}_loss_curve"] = plots.loss_curve(
            name,
            read_csv(args.metrics / f"loss_{name}.csv", ["step", "loss"]),
            fit["loss_floor"],
            fit["units"],
            cfg.smooth,
            expected=fit["saved_model_expected_loss"],
        )
    figs["loss_curves_bound"] = plots.bound_curves(
        {
            name: (
                read_csv(args.metrics / f"loss_{name}.csv", ["step", "loss"]),
                read_json(args.metrics / "details" / f"train_{name}.json"),
            )
            for name in MODELS
        },
        cfg.smooth,
    )
    figs["eps_error_by_t"] = plots.eps_error_by_t(
        {name: read_eps_error(args.metrics / "details" / f"eps_error_{name}.csv", dcfg.T) for name in MODELS}
    )
    write_outputs({args.out / f"{key}.png": png_writer(fig, cfg.dpi, version_stamp=True) for key, fig in figs.items()})
    for fig in figs.values():
        plt.close(fig)
    print(f"plot: {len(figs)} figures -> {args.out}/")


if __name__ == "__main__":
    run_stage(main)
