"""The training loop: minibatches of x_0, one objective, Adam, an EMA of the weights.

The objective is any callable `loss_fn(model, x0, generator) -> (B,)` (for example
GaussianDiffusion.loss_eq12 or .loss_eq3 with the model bound in). No file I/O here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict
from typing import Annotated, Callable

import numpy as np
import torch

from ddpm_lab.runtime.params import Count, ConfigError, Positive, Seed, Threads, doc, require, schema
from ddpm_lab.core.diffusion import (
    ESTIMATORS,
    HYBRID_LAMBDA,
    MIN_SNR_GAMMA,
    T_SAMPLINGS,
    TARGETS,
    WEIGHTINGS,
    GaussianDiffusion,
)
from ddpm_lab.core.estimators import TERMS
from ddpm_lab.core.weightings import VLB_WEIGHTS
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.runtime.stats import mean_se


LR_MAX = 1.0  # Adam moves each weight by about lr per step: more than 1 is refused as a typo, not trained


class TrainingDiverged(ConfigError):
    """The loss became non-finite: the params (lr, grad_clip, the data's scale) do not train.
    A ConfigError, so a stage reports it in one line with exit status 2."""


@schema
class TrainConfig:
    """Adam on a training objective with a cosine learning rate and EMA weights (the sections
    `train_eq12`, `train_eq3` and `images_train`)."""

    steps: Annotated[Count, doc("optimiser steps")] = 3000
    batch_size: Annotated[
        Count, doc("x_0 per step (train_eq3: whole trajectories, each diffusion.T network evaluations)")
    ] = 512
    lr: Annotated[
        Positive,
        doc(
            f"peak Adam learning rate, at most {LR_MAX:g} (Adam moves each weight by about lr per step): "
            "linear warmup, then cosine decay to 0 at the last step"
        ),
    ] = 2e-3
    warmup: Annotated[int, doc("steps of linear warmup of the learning rate, in [0, steps] (part of the steps)")] = 100
    ema_decay: Annotated[float, doc("decay of the EMA weights (the saved model), in [0, 1)")] = 0.995
    grad_clip: Annotated[Positive, doc("maximum gradient norm (larger gradients are scaled down to it)")] = 1.0
    log_every: Annotated[Count, doc("steps per row of the loss history")] = 10
    seed: Annotated[
        Seed, doc("seed of the torch generator (minibatches, timesteps, noise); folded with `replicate`")
    ] = 0
    threads: Annotated[
        Threads,
        doc(
            "torch CPU threads (0: torch's default); part of the result: the order of the float sums of the "
            "backward pass depends on it, so the same params give the same bytes"
        ),
    ] = 1

    def __post_init__(self):
        require(
            self.lr <= LR_MAX, "lr", self.lr, f"a number <= {LR_MAX:g} (Adam moves each weight by about lr per step)"
        )
        require(
            0 <= self.warmup <= self.steps,
            "warmup",
            self.warmup,
            f"an integer in [0, steps = {self.steps}] (warmup steps are part of the steps)",
        )
        require(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "a number in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


@schema
class Eq12TrainConfig(TrainConfig):
    """TrainConfig plus the noise loss (GaussianDiffusion.loss_eq12): its weighting over t, how t
    is drawn, and the regression target."""

    weighting: Annotated[
        str,
        doc(
            "weights of the noise loss over t (GaussianDiffusion.mse_weights): eq12 (Eq. 12), eq14 (L_simple, "
            "Eq. 14), min_snr (min-SNR-gamma, Hang et al. 2023) or target_mse (the plain MSE of the network's "
            "prediction target); all minimised by eps*",
            choices=WEIGHTINGS,
        ),
    ] = "eq12"
    t_sampling: Annotated[
        str,
        doc(
            "how t is drawn per minibatch, each with the same expectation (GaussianDiffusion.loss_eq12)",
            choices=T_SAMPLINGS,
        ),
    ] = "uniform"
    min_snr_gamma: Annotated[
        Positive, doc("gamma of weighting min_snr: weights min(SNR_t, gamma) / SNR_t on the eps error")
    ] = MIN_SNR_GAMMA
    target: Annotated[
        str,
        doc(
            "the regression target: sampled (Eq. 12's eps) or stable (its posterior mean given x_t over the "
            "minibatch's x_0, Xu et al. 2023: lower variance at large t, a bias of order 1 / batch_size)",
            choices=TARGETS,
        ),
    ] = "sampled"
    hybrid_lambda: Annotated[
        float,
        doc(
            "lambda of weighting hybrid, >= 0: L_simple + lambda T L_{t-1} with the mean held fixed in the "
            "second term (Nichol & Dhariwal 2021, Sec. 3.1: 0.001); read by weighting hybrid only"
        ),
    ] = HYBRID_LAMBDA
    hybrid_vlb: Annotated[
        str,
        doc(
            "how weighting hybrid weights its L_{t-1} over t: kl (the bound's own terms, Nichol & Dhariwal 2021) "
            "or preconditioned (each t's term divided by the square of d log Sigma / dv, capped: this lab's, "
            "docs/variance.md); read by weighting hybrid only",
            choices=tuple(VLB_WEIGHTS),
        ),
    ] = "kl"

    def __post_init__(self):
        super().__post_init__()
        require(self.weighting in WEIGHTINGS, "weighting", self.weighting, f"one of {', '.join(WEIGHTINGS)}")
        require(self.hybrid_lambda >= 0, "hybrid_lambda", self.hybrid_lambda, "a number >= 0 (0: L_simple alone)")
        require(
            self.weighting != "hybrid" or self.t_sampling != "importance",
            "t_sampling",
            self.t_sampling,
            "uniform or stratified with weighting hybrid (Nichol & Dhariwal 2021 draw t uniformly for L_hybrid)",
        )
        require(self.t_sampling in T_SAMPLINGS, "t_sampling", self.t_sampling, f"one of {', '.join(T_SAMPLINGS)}")
        require(self.target in TARGETS, "target", self.target, f"one of {', '.join(TARGETS)}")
        require(self.hybrid_vlb in VLB_WEIGHTS, "hybrid_vlb", self.hybrid_vlb, f"one of {', '.join(VLB_WEIGHTS)}")

    def check_learned_variance(self, learned_variance: bool, model_section: str) -> None:
        """weighting hybrid exactly when the model (section model_section) learns its variance: L_hybrid is
        what trains it, and it has nothing to train without one."""
        require(
            (self.weighting == "hybrid") == learned_variance,
            "weighting",
            self.weighting,
            f"hybrid with {model_section}.learned_variance true (L_hybrid is what trains the variance)"
            if learned_variance
            else f"a weighting other than hybrid with {model_section}.learned_variance false (hybrid trains a learned "
            "variance)",
        )


@schema
class Eq3TrainConfig(TrainConfig):
    """TrainConfig plus the estimator of the Eq. 3 bound (GaussianDiffusion.loss_bound)."""

    estimator: Annotated[
        str,
        doc(
            "trajectory (Eq. 3's log-ratios on one sampled trajectory), trajectory_kl (Eq. 5's KLs on the same "
            "trajectory) or subsampled (terms_per_trajectory = K of the T terms, scaled by T / K)",
            choices=ESTIMATORS,
        ),
    ] = "trajectory"
    terms_per_trajectory: Annotated[
        int,
        doc(
            "K, the terms per trajectory of estimator subsampled, in [1, diffusion.T] (K network evaluations "
            "per row); 0 with the other estimators"
        ),
    ] = 0
    term: Annotated[
        str,
        doc(
            "the kind of the subsampled terms (read by estimator subsampled only): log_ratio (Eq. 3) or kl (Eq. 5)",
            choices=TERMS,
        ),
    ] = "kl"

    def __post_init__(self):
        super().__post_init__()
        require(self.estimator in ESTIMATORS, "estimator", self.estimator, f"one of {', '.join(ESTIMATORS)}")
        if self.estimator == "subsampled":
            require(
                self.terms_per_trajectory >= 1,
                "terms_per_trajectory",
                self.terms_per_trajectory,
                "an integer in [1, diffusion.T] with estimator subsampled (K terms per trajectory)",
            )
        else:
            require(
                self.terms_per_trajectory == 0,
                "terms_per_trajectory",
                self.terms_per_trajectory,
                f"0 with estimator {self.estimator} (K is the subsampled estimator's)",
            )
        require(self.term in TERMS, "term", self.term, f"one of {', '.join(TERMS)} (read by estimator subsampled)")

    def describe(self) -> str:
        if self.estimator != "subsampled":
            return self.estimator
        return f"subsampled, K = {self.terms_per_trajectory} ({self.term} terms)"


def tail_loss(history: np.ndarray, fraction: float = 0.1) -> tuple[float, float | None]:
    """Mean and standard error of the last `fraction` of the logged rows of a loss history (S, 2):
    the training loss at the end, with its noise (SE None for a single row)."""
    return mean_se(history[-max(1, round(len(history) * fraction)) :, 1])


def objective_loss(
    diffusion: GaussianDiffusion,
    cfg: Eq12TrainConfig | Eq3TrainConfig,
    prediction: str = "eps",
    learned_variance: bool = False,
) -> Callable:
    """The objective of a training section as loss_fn(model, x0, generator) -> (B,): the noise loss
    with cfg.weighting (Eq12TrainConfig), or cfg's estimator of the Eq. 3 bound (Eq3TrainConfig), for
    a model that outputs `prediction` (ddpm_lab.core.targets): the noise loss on that target's own
    squared error, the bound on the eps the output converts to. learned_variance: the model also
    outputs v (L_hybrid for the noise loss; the bound trains Sigma_theta through its own terms)."""
    if isinstance(cfg, Eq12TrainConfig):
        weighting, t_sampling, gamma, target = cfg.weighting, cfg.t_sampling, cfg.min_snr_gamma, cfg.target
        lam, vlb = cfg.hybrid_lambda, cfg.hybrid_vlb
        return lambda m, x0, g: diffusion.loss_eq12(
            m, x0, g, weighting, None, t_sampling, prediction, gamma, target, learned_variance, lam, vlb
        )
    abar = diffusion.np["alphas_cumprod"]
    return lambda m, x0, g: diffusion.loss_bound(
        as_eps_model(m, prediction, abar, learned_variance), x0, g, cfg.estimator, cfg.terms_per_trajectory, cfg.term
    )


def objective_name(cfg: Eq12TrainConfig | Eq3TrainConfig) -> str:
    """What the objective of a training section is: the weighting of the noise loss ("eq12",
    "eq14"), or the estimator of the Eq. 3 bound (Eq3TrainConfig.describe)."""
    return cfg.weighting if isinstance(cfg, Eq12TrainConfig) else cfg.describe()


def evaluations_per_row(diffusion: GaussianDiffusion, cfg: Eq12TrainConfig | Eq3TrainConfig) -> int:
    """Network evaluations per x_0 row of the objective: 1 for the noise loss (one t per row),
    GaussianDiffusion.evaluations of the Eq. 3 estimator otherwise."""
    if isinstance(cfg, Eq12TrainConfig):
        return 1
    return diffusion.evaluations(cfg.estimator, cfg.terms_per_trajectory)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for all parameters in one fused call."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to 0 at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))


TRAINING_STATE_KEYS = ("step", "model", "ema", "optimizer", "generator", "history", "window")


def training_state(
    step: int,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    opt: torch.optim.Optimizer,
    g: torch.Generator,
    rows: list,
    window: list,
) -> dict:
    """Everything the loop needs to continue after `step` completed steps, exactly as if it had
    never stopped: weights, EMA weights, Adam moments, the generator state, the loss history
    and the partial logging window. Tensors alias the live ones: serialise before training on."""
    return {
        "step": step,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": g.get_state(),
        "history": [list(r) for r in rows],
        "window": list(window),
    }


def restore_training_state(
    state: dict,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    opt: torch.optim.Optimizer,
    g: torch.Generator,
    cfg: TrainConfig,
):
    """Load a training_state dict into the live objects. Returns (start step, rows, window);
    ValueError if the state is incomplete or does not fit cfg."""
    missing = [k for k in TRAINING_STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"training state lacks {', '.join(missing)}: expected keys {', '.join(TRAINING_STATE_KEYS)}")
    step = int(state["step"])
    if not 0 <= step <= cfg.steps:
        raise ValueError(f"training state at step {step}: expected 0..{cfg.steps} (steps)")
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    g.set_state(state["generator"])
    return step, [(int(s), float(v)) for s, v in state["history"]], [float(v) for v in state["window"]]


def train(
    model: torch.nn.Module,
    loss_fn: Callable,
    data: torch.Tensor,
    cfg: TrainConfig,
    progress: Callable | None = None,
    *,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    world=None,
):
    """Train `model` on rows of `data` (N, ...). Returns (ema_model, history) where history is
    an (S, 2) array of (step, mean loss over the last log_every steps).

    world (optional, a ddpm_lab.runtime.distributed.World of several processes): every rank draws the
    same global batch; loss_fn must return the losses of this rank's shard of it
    (world.shard); the model is called through DDP, the logged loss is the ranks' mean, the
    progress bar is rank 0's. None: one process.

    Checkpointing (all optional): every `checkpoint_every` steps, and after the last one,
    `on_checkpoint(training_state(...))` is called, on every rank (the caller writes it somewhere,
    from rank 0 only; its tensors alias the live ones). `resume`: such a state; training
    continues from its step and ends with the same weights, EMA and history as a run that was
    never interrupted."""
    g = torch.Generator().manual_seed(cfg.seed)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    rows, window = [], []
    start = 0
    if resume is not None:
        start, rows, window = restore_training_state(resume, model, ema, opt, g, cfg)
    net = world.wrap(model) if world is not None else model
    steps = range(start, cfg.steps)
    bar = progress(steps) if progress and (world is None or world.main) else steps
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        idx = torch.randint(0, data.shape[0], (cfg.batch_size,), generator=g)
        loss = loss_fn(net, data[idx], g).mean()
        value = world.mean(loss.detach()) if world is not None else loss.detach()  # every rank sees it
        if not torch.isfinite(value):
            raise TrainingDiverged(
                f"training diverged at step {step + 1} of {cfg.steps}: loss = {value.item()}: "
                f"expected a finite loss (lr = {cfg.lr:g}, grad_clip = {cfg.grad_clip:g}: "
                f"try a smaller lr)"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema_update(ema, model, cfg.ema_decay)
        window.append(value.item())
        if len(window) == cfg.log_every or step == cfg.steps - 1:
            rows.append((step + 1, float(np.mean(window))))
            window = []
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{rows[-1][1]:.4f}")
        if (
            on_checkpoint is not None
            and checkpoint_every
            and ((step + 1) % checkpoint_every == 0 or step == cfg.steps - 1)
        ):
            on_checkpoint(training_state(step + 1, model, ema, opt, g, rows, window))
    return ema, np.array(rows, dtype=np.float64).reshape(-1, 2)
