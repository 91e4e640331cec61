"""Training an eps-network on the mixture's draws with one of the paper's two objectives, then
measuring the saved model exactly (stages train_eq12 and train_eq3).

- "eq12": the noise loss, weighted as Eq. 12 or unweighted as Eq. 14 (Eq12TrainConfig.weighting);
- "eq3": an estimator of the variational bound of Eq. 3 (Eq3TrainConfig: whole forward trajectories,
  or K of their T terms).

The network (EpsMLP.seeded with the training seed) is trained by ddpm_lab.core.training.train, and
its EMA weights are measured exactly (ddpm_lab.gmm.exact.measure_model): the per-timestep excess
error e_t over the least error mmse_t, and from it the model's expected loss beside the floor, the
expected loss of the exact eps*. No file I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.core.training import (
    Eq3TrainConfig,
    Eq12TrainConfig,
    evaluations_per_row,
    objective_loss,
    objective_name,
    tail_loss,
    train,
)
from ddpm_lab.gmm.artifacts import EPS_ERROR_COLUMNS
from ddpm_lab.gmm.exact import measure_model
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.names import EQ3, EQ12
from ddpm_lab.gmm.variance import learned_measure


@dataclass
class Trained:
    """What one training run gives: the EMA model, the details (the exact measurement, the
    objective, its budget and the logged loss at the end), the per-t excess errors (columns
    EPS_ERROR_COLUMNS) and the loss history (step, loss)."""

    ema: torch.nn.Module
    metrics: dict
    eps_error: pd.DataFrame
    history: pd.DataFrame


def train_on_mixture(
    objective: str,
    diffusion: GaussianDiffusion,
    mcfg: MLPConfig,
    tcfg: Eq12TrainConfig | Eq3TrainConfig,
    data: np.ndarray,
    mixture: GaussianMixture,
    progress: Callable | None = None,
) -> Trained:
    """Train EpsMLP.seeded(mcfg, tcfg.seed) on data (N, D) with objective "eq12" or "eq3" (tcfg: its
    section), deterministic torch algorithms, then measure its EMA weights exactly against mixture
    (numpy generator [tcfg.seed, 2]).

    A noise loss weighted as Eq. 12 is the bound less its constants (L_T, the variance terms, L_0's
    normaliser): they are added to its logged loss (L_T at E||x_0||^2, exact for the mixture), which
    then estimates the bound in nats without bias, on one axis and one floor (the oracle's bound)
    with the Eq. 3 estimators; the saved model is then measured in the bound's units too."""
    model = EpsMLP.seeded(mcfg, tcfg.seed)
    loss_fn = objective_loss(diffusion, tcfg, mcfg.prediction, mcfg.learned_variance)
    weighting = objective_name(tcfg)  # the weighting of the noise loss, or the estimator of the bound
    torch.use_deterministic_algorithms(True)
    ema, history = train(model, loss_fn, torch.as_tensor(data, dtype=torch.float32), tcfg, progress=progress)

    in_bound = objective == EQ3 or weighting == "eq12"
    if objective == EQ12 and in_bound:
        history[:, 1] += diffusion.prior_kl(mixture.second_moment(), mixture.dim) + diffusion.bound_constant(
            mixture.dim
        )
    # The saved (EMA) model measured exactly: per-t excess errors e_t over the least error mmse_t.
    # Measured as the eps it predicts (ddpm_lab.core.targets), in the objective's own weights.
    eps_model = as_eps_model(ema, mcfg.prediction, diffusion.np["alphas_cumprod"])
    rng = np.random.default_rng([tcfg.seed, 2])
    exact, by_t = measure_model(
        mixture,
        diffusion,
        eps_model,
        "bound" if in_bound else weighting,
        rng,
        weights=None if in_bound else (mcfg.prediction, tcfg.min_snr_gamma),
    )
    if mcfg.learned_variance:  # the bound and the floors of a learned Sigma (ddpm_lab.gmm.variance)
        lam = getattr(tcfg, "hybrid_lambda", 0.0)
        exact = learned_measure(exact, diffusion, mixture, eps_model, "bound" if in_bound else weighting, lam, rng)
    tail, tail_se = tail_loss(history)
    metrics = {
        **exact,
        "objective": objective,
        "weighting": weighting,
        "steps": tcfg.steps,
        "batch_size": tcfg.batch_size,
        "network_evaluations": tcfg.steps * tcfg.batch_size * evaluations_per_row(diffusion, tcfg),
        "final_loss": tail,
        "final_loss_se": tail_se,
    }
    return Trained(
        ema,
        metrics,
        pd.DataFrame({name: by_t[name] for name in EPS_ERROR_COLUMNS}),
        pd.DataFrame({"step": history[:, 0].astype(int), "loss": history[:, 1]}),
    )
