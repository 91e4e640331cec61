"""Benchmark: the Eq. 12 model's training seen exactly: the EMA weights every tenth of the run, each
judged by the exact distribution Algorithm 2 outputs with them (ddpm_lab.gmm.propagate), beside
their exact bound gap.

The model is trained in-process as stage train_eq12 trains it (params.yaml's `diffusion`, `model`
and `train_eq12`, replicate r folded into the seed, the committed data/gmm), with the training
loop's checkpoint hook taking a copy of the EMA weights every `steps / points` steps. Each copy is
measured: the exact bound gap sum_t w_t e_t (quadrature, ddpm_lab.gmm.exact.measure_model) and the
exact KL, W1, KS and mode error of Algorithm 2's output (W1 and KS as ratios to the floor medians
of metrics/details/dist_eq12.json, the sampled floors at the study's pooled n). No sampling noise
enters: what moves along a curve is the model.

    python benchmarks/bench_training_dynamics.py [--replicates 0,1] [--set train_eq12.steps=6000] \
        [--write benchmarks/results/training_dynamics.csv --figure docs/figures/training_dynamics.png]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.core.training import objective_loss, train
from ddpm_lab.gmm.artifacts import load_mixture
from ddpm_lab.gmm.exact import measure_model
from ddpm_lab.gmm.model import EpsMLP
from ddpm_lab.gmm.params import read
from ddpm_lab.gmm.propagate import measures
from ddpm_lab.runtime.io import read_array
from ddpm_lab.runtime.seeds import fold_seed

if __package__:  # python -m benchmarks.bench_training_dynamics
    from . import harness
else:  # python benchmarks/bench_training_dynamics.py: its folder, benchmarks/, comes first on the import path
    import harness


def snapshots(params: dict, replicate: int, points: int, data: np.ndarray):
    """Train as stage train_eq12 does; yield (step, EMA copy, seconds so far) every steps / points steps."""
    dcfg = read(params, "diffusion")
    tcfg = read(params, "train_eq12")
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, replicate))
    mcfg = read(params, "model", data_dim=data.shape[1])
    diffusion = dcfg.build()
    kept = []
    start = time.perf_counter()

    def keep(state: dict) -> None:
        ema = EpsMLP(mcfg)
        ema.load_state_dict(copy.deepcopy(state["ema"]))
        kept.append((state["step"], ema.eval(), time.perf_counter() - start))

    torch.set_num_threads(tcfg.threads or torch.get_num_threads())
    torch.use_deterministic_algorithms(True)
    model = EpsMLP.seeded(mcfg, tcfg.seed)
    every = max(1, tcfg.steps // points)
    train(
        model,
        objective_loss(diffusion, tcfg, mcfg.prediction),
        torch.as_tensor(data, dtype=torch.float32),
        tcfg,
        checkpoint_every=every,
        on_checkpoint=keep,
    )
    return diffusion, mcfg, tcfg, kept


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(harness.PARAMS))
    ap.add_argument("--data", default=str(harness.ROOT / "data" / "gmm"), type=Path)
    ap.add_argument("--replicates", default="0", help="comma-separated replicate ids")
    ap.add_argument("--points", type=int, default=10, help="EMA copies along the run")
    ap.add_argument("--set", action="append", default=[], help="section.key=value (YAML value), repeatable")
    ap.add_argument("--write", type=Path, help="CSV of every point")
    ap.add_argument("--figure", type=Path, help="PNG: the exact measures against the step")
    args = ap.parse_args(argv)

    try:
        params = harness.override(harness.read_params(args.params), harness.parse_overrides(args.set))
    except ValueError as e:
        ap.error(f"--set {e}")
    data = read_array(args.data / "train.npy", ndim=2)
    mixture = load_mixture(args.data / "mixture.json")
    floors = json.loads((harness.ROOT / "metrics" / "details" / "dist_eq12.json").read_text())
    median = {k: floors[k]["floor"]["median"] for k in ("w1", "ks")}
    rows = []
    for replicate in (int(r) for r in args.replicates.split(",")):
        diffusion, mcfg, tcfg, kept = snapshots(params, replicate, args.points, data)
        abar = diffusion.np["alphas_cumprod"]
        for step, ema, seconds in kept:
            eps_model = as_eps_model(ema, mcfg.prediction, abar)
            exact, _ = measure_model(mixture, diffusion, eps_model, "bound", np.random.default_rng([tcfg.seed, 2]))
            docs, _ = measures(diffusion, eps_model, SamplerConfig(), mixture)
            o = docs["output"]
            rows.append(
                {
                    "replicate": replicate,
                    "step": step,
                    "train_seconds": round(seconds, 2),
                    "bound_gap": exact["saved_model_excess_loss"],
                    "kl": o["kl"],
                    "kl_err": o["kl_err"],
                    "w1_ratio": o["w1"] / median["w1"],
                    "ks_ratio": o["ks"] / median["ks"],
                    "mode_err": o["mode_err"],
                    "grid_err_max": max(o["w1_err"] / median["w1"], o["ks_err"] / median["ks"]),
                }
            )
            print(
                f"replicate {replicate} step {step:>6}: bound gap {rows[-1]['bound_gap']:.5f} nats, exact KL "
                f"{o['kl']:.2e}, W1 x{rows[-1]['w1_ratio']:.2f}, KS x{rows[-1]['ks_ratio']:.2f}, mode error "
                f"{o['mode_err']:.4f}",
                flush=True,
            )
    table = pd.DataFrame(rows)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.write, index=False, float_format="%.6g")
    if args.figure:
        figure(table, tcfg, args.set).savefig(args.figure, dpi=110)


def figure(table: pd.DataFrame, tcfg, overrides: list[str]):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [
        ("bound_gap", "exact bound gap (nats)"),
        ("kl", "exact KL(q || p_theta) (nats)"),
        ("w1_ratio", "exact W1 / floor median"),
        ("mode_err", "exact max mode-weight error"),
    ]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.8))
    for ax, (col, label) in zip(axes, cols):
        for replicate, rows in table.groupby("replicate"):
            ax.plot(rows["step"], rows[col], marker="o", ms=3, label=f"replicate {replicate}")
        ax.set(xlabel="training step", ylabel=label, yscale="log")
        ax.grid(alpha=0.3)
    axes[2].axhline(0.5, color="black", ls="--", lw=1, label="target: 0.5")
    axes[2].axhline(1.0, color="gray", ls=":", lw=1, label="floor median")
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(
        f"The Eq. 12 model along training, judged exactly (EMA weights every {tcfg.steps // 10} steps; "
        f"{tcfg.steps} steps x {tcfg.batch_size}, lr {tcfg.lr:g} cosine to 0, EMA {tcfg.ema_decay:g}"
        + (f"; {', '.join(overrides)}" if overrides else "")
        + ")",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
