"""The training run of stages train_eq12 / train_eq3 as library calls, on tiny inputs: the objective
of a training section (ddpm_lab.core.training.objective_loss, objective_name, evaluations_per_row)
and ddpm_lab.gmm.train.train_on_mixture (the run, the bound's constants added to a weighted noise
loss, the exact measurement of the saved model, the same result for the same seed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import LOSS_UNITS, DiffusionConfig
from ddpm_lab.core.training import (
    Eq3TrainConfig,
    Eq12TrainConfig,
    evaluations_per_row,
    objective_loss,
    objective_name,
    train,
)
from ddpm_lab.gmm.artifacts import EPS_ERROR_COLUMNS
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.train import train_on_mixture

T = 10
DIFFUSION = DiffusionConfig(T=T, schedule="linear", beta_start=0.01, beta_end=0.5, variance="beta").build()
MCFG = MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=1)
MIXTURE = GaussianMixture([0.4, 0.6], [-2.0, 1.5], [0.5, 0.7])
DATA = MIXTURE.sample(200, np.random.default_rng(0))
SMALL = dict(steps=3, batch_size=16, log_every=1, warmup=1)


@pytest.fixture(autouse=True)
def _deterministic_off():
    yield
    torch.use_deterministic_algorithms(False)


def test_objective_of_each_section():
    eq12, eq14 = Eq12TrainConfig(**SMALL), Eq12TrainConfig(**SMALL, weighting="eq14")
    sub = Eq3TrainConfig(**SMALL, estimator="subsampled", terms_per_trajectory=4, term="log_ratio")
    traj = Eq3TrainConfig(**SMALL)
    assert [objective_name(c) for c in (eq12, eq14, traj)] == ["eq12", "eq14", "trajectory"]
    assert objective_name(sub) == sub.describe() == "subsampled, K = 4 (log_ratio terms)"
    assert [evaluations_per_row(DIFFUSION, c) for c in (eq12, eq14, traj, sub)] == [1, 1, T, 4]
    model, x0 = EpsMLP.seeded(MCFG, 0), torch.as_tensor(DATA[:6], dtype=torch.float32)
    for cfg, direct in [
        (eq14, lambda g: DIFFUSION.loss_eq12(model, x0, g, "eq14")),
        (sub, lambda g: DIFFUSION.loss_bound(model, x0, g, "subsampled", 4, "log_ratio")),
    ]:
        loss = objective_loss(DIFFUSION, cfg)(model, x0, torch.Generator().manual_seed(1))
        assert loss.shape == (6,) and torch.equal(loss, direct(torch.Generator().manual_seed(1)))


@pytest.mark.parametrize(
    "objective,cfg,units",
    [
        ("eq12", Eq12TrainConfig(**SMALL), LOSS_UNITS["bound"]),
        ("eq12", Eq12TrainConfig(**SMALL, weighting="eq14"), LOSS_UNITS["eq14"]),
        ("eq3", Eq3TrainConfig(**{**SMALL, "batch_size": 2}), LOSS_UNITS["bound"]),
    ],
)
def test_train_on_mixture(objective, cfg, units):
    run = train_on_mixture(objective, DIFFUSION, MCFG, cfg, DATA, MIXTURE)
    m = run.metrics
    assert m["objective"] == objective and m["weighting"] == objective_name(cfg) and m["units"] == units
    assert m["network_evaluations"] == cfg.steps * cfg.batch_size * evaluations_per_row(DIFFUSION, cfg)
    assert m["saved_model_expected_loss"] == pytest.approx(m["loss_floor"] + m["saved_model_excess_loss"])
    assert list(run.eps_error.columns) == EPS_ERROR_COLUMNS and list(run.eps_error["t"]) == list(range(1, T + 1))
    assert list(run.history.columns) == ["step", "loss"] and list(run.history["step"]) == [1, 2, 3]
    assert m["final_loss"] == run.history["loss"].iloc[-1]  # the last 10% of 3 rows: the last row
    if objective == "eq12":
        # The logged loss is train's own, plus the bound's constants for the Eq. 12 weighting only.
        _, history = train(
            EpsMLP.seeded(MCFG, cfg.seed),
            objective_loss(DIFFUSION, cfg),
            torch.as_tensor(DATA, dtype=torch.float32),
            cfg,
        )
        constant = (
            DIFFUSION.prior_kl(MIXTURE.second_moment(), MIXTURE.dim) + DIFFUSION.bound_constant(MIXTURE.dim)
            if cfg.weighting == "eq12"
            else 0.0
        )
        assert np.array_equal(run.history["loss"].to_numpy(), history[:, 1] + constant)
    else:  # the same seed, the same run
        again = train_on_mixture(objective, DIFFUSION, MCFG, cfg, DATA, MIXTURE)
        assert again.metrics == m and again.history.equals(run.history)
        assert all(torch.equal(a, b) for a, b in zip(again.ema.state_dict().values(), run.ema.state_dict().values()))
