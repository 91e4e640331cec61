"""Stage estimator_variance: the gradient variance of the bound's estimators, per network evaluation.

For each estimator of the bound's gradient (Eq. 3's trajectory log-ratios, the same trajectory's
closed-form KLs, K subsampled terms of either kind, and the Eq. 12 noise loss) and at three
parameter points (the initial weights of training, the trained Eq. 3 and Eq. 12 models), the
trace of the gradient covariance of one minibatch, its cost per unit of gradient precision (trace x
network evaluations per minibatch) and the check that every estimator estimates the same gradient,
each with its error: ddpm_lab.gmm.gradient_noise (the figure: ddpm_lab.gmm.gradient_noise_figure).

Params: `diffusion`, `model` (both checked against the checkpoints), `estimator_variance`. Writes
metrics/details/estimator_variance.csv (one row per point and estimator: every number with its
error), metrics/estimator_variance.json (the headline, two numbers: the trajectory estimator's cost
as a multiple of Eq. 12's at the initial weights, with its standard error) and
images/estimator_variance.png. No wall-clock time is written: the outputs are the same bytes on rerun.
Off by default (estimator_variance.enabled false): the outputs then say how to run it, and a
train_eq12 or train_eq3 variant does not pay for the study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.runtime.io import json_bytes, load_params, png_writer, read_array, write_outputs
from ddpm_lab.runtime.not_run import not_run_details, not_run_figure

DPI = 110
ENABLE = "dvc exp run -S estimator_variance.enabled=true"
TITLE = "Gradient noise of the bound's estimators"


def main(argv=None) -> None:
    matplotlib.use("Agg")  # process-wide: chosen once, here, at the stage's entry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--metrics-out", default="metrics/estimator_variance.json", type=Path)
    ap.add_argument("--details-out", default="metrics/details/estimator_variance.csv", type=Path)
    ap.add_argument("--figure-out", default="images/estimator_variance.png", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "estimator_variance", args.params)
    if not cfg.enabled:  # reads no data and no model, imports no torch: about a second
        reason = "estimator_variance.enabled is false in params.yaml, so nothing was measured."
        head, details, fig = {}, not_run_details(ENABLE), not_run_figure(TITLE, reason, ENABLE)
        line = f"disabled (estimator_variance.enabled is false): nothing measured; to run it: {ENABLE}"
    else:
        import torch

        from ddpm_lab.gmm import gradient_noise as gn
        from ddpm_lab.gmm.gradient_noise_figure import estimator_variance as figure
        from ddpm_lab.runtime.torch_setup import use_threads

        data = read_array(args.data / "train.npy", ndim=2)
        mcfg = read(params, "model", args.params, data_dim=data.shape[1])
        use_threads(cfg.threads)
        torch.use_deterministic_algorithms(True)
        points = gn.load_points(args.models, dcfg, mcfg, args.params)
        from ddpm_lab.gmm.artifacts import load_mixture
        from ddpm_lab.gmm.variance import diffusion_for

        diffusion = diffusion_for(dcfg, load_mixture(args.data / "mixture.json"))
        table, ests = gn.measure(points, diffusion, data, cfg)
        head = gn.headline(table)
        details = table.to_csv(index=False, float_format="%.6g").encode()
        fig = figure(table, ests, dcfg.T, cfg.minibatches)
        line = (
            f"at the {gn.POINTS[gn.HEADLINE_POINT]}, the trajectory estimator needs {head['eq3_cost_x']:.3g} "
            f"(+- {head['eq3_cost_x_se']:.2g}) times Eq. 12's network evaluations for the same gradient precision"
        )
    write_outputs(
        {args.metrics_out: json_bytes(head), args.details_out: details, args.figure_out: png_writer(fig, DPI)}
    )
    print(f"estimator_variance: {line}")


if __name__ == "__main__":
    run_stage(main)
