"""ddpm_lab.gmm.gradient_noise (the library of stage estimator_variance) on tiny inputs: the
estimators (names, labels, costs, seeds), the minibatch gradients, the summary statistics and the
distance check against brute force, the table of one parameter point, the headline, the parameter
points of the checkpoints, the figure. The stage end to end: tests/stage/test_estimator_variance.py."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.estimators import TERMS
from ddpm_lab.gmm import gradient_noise as gn
from ddpm_lab.gmm.gradient_noise_figure import estimator_variance as figure
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.params import EstimatorVarianceConfig
from ddpm_lab.runtime.io import save_checkpoint_bytes
from ddpm_lab.runtime.params import ConfigError, DataError, to_dict

T = 10
DCFG = DiffusionConfig(T=T, schedule="linear", beta_start=0.001, beta_end=0.2, variance="beta")
MCFG = MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=1)
CFG = EstimatorVarianceConfig(
    enabled=True, minibatches=4, rows_trajectory=2, rows_subsampled=3, terms=[2, 50], rows_eq12=8, seed=0, threads=1
)


@pytest.fixture
def tiny():
    """(diffusion, a seeded untrained model, 50 draws of x_0 as a float32 tensor)."""
    data = torch.as_tensor(np.random.default_rng(0).normal(size=(50, 1)), dtype=torch.float32)
    return DCFG.build(), EpsMLP.seeded(MCFG, 0), data


def test_estimators_in_table_order_with_K_clamped_to_T():
    ests = gn.estimators(CFG, T)
    assert [e.name for e in ests] == [
        "trajectory",
        "trajectory_kl",
        "subsampled_log_ratio_K2",
        "subsampled_log_ratio_K10",
        "subsampled_kl_K2",
        "subsampled_kl_K10",
        "eq12",
    ]
    assert [e.rows for e in ests] == [2, 2, 3, 3, 3, 3, 8]
    diffusion = DCFG.build()
    assert [e.evaluations(diffusion) for e in ests] == [T, T, 2, T, 2, T, 1]
    assert ests[2].label() == "subsampled\nlog-ratio, K = 2" and ests[4].label() == "subsampled\nKL, K = 2"
    assert all(e.label() for e in ests)
    # Each estimator's generators are its own: the seed key names the family, K and term.
    keys = [tuple(e.seed_key(7)) for e in ests]
    assert len(set(keys)) == len(keys) and all(k[0] == 7 for k in keys)
    assert ests[4].seed_key(0) == [0, gn.FAMILIES.index("subsampled"), 2, TERMS.index("kl")]


def test_minibatch_gradients_are_seeded_and_one_per_minibatch(tiny):
    diffusion, model, data = tiny
    est = gn.Estimator("subsampled", 3, 2, "kl")
    grads, values = gn.minibatch_gradients(est, diffusion, model, data, 5, 0, "test")
    assert grads.shape == (5, sum(p.numel() for p in model.parameters())) and grads.dtype == np.float64
    assert values.shape == (5,) and np.all(np.isfinite(grads)) and np.all(np.isfinite(values))
    again, values_again = gn.minibatch_gradients(est, diffusion, model, data, 5, 0, "test")
    assert np.array_equal(grads, again) and np.array_equal(values, values_again)  # the same draws
    other, _ = gn.minibatch_gradients(est, diffusion, model, data, 5, 1, "test")
    assert not np.array_equal(grads, other)  # another seed, other draws
    # Minibatch m's draws do not depend on how many minibatches are drawn.
    assert np.array_equal(gn.minibatch_gradients(est, diffusion, model, data, 2, 0, "test")[0], grads[:2])


def test_summary_against_brute_force():
    rng = np.random.default_rng(0)
    M, P = 9, 5
    g = rng.normal(size=(M, P)) * np.arange(1, P + 1) + 3.0
    s = gn.GradientSummary.of(g)
    assert s.trace == pytest.approx(g.var(0, ddof=1).sum())
    assert s.norm == pytest.approx(np.linalg.norm(g.mean(0)))
    loo = np.array([np.delete(g, i, 0).var(0, ddof=1).sum() for i in range(M)])
    assert s.trace_se == pytest.approx(math.sqrt((M - 1) / M * np.sum((loo - loo.mean()) ** 2)))
    loo_norm = np.array([np.linalg.norm(np.delete(g, i, 0).mean(0)) for i in range(M)])
    assert s.norm_se == pytest.approx(math.sqrt((M - 1) / M * np.sum((loo_norm - loo_norm.mean()) ** 2)))
    # tr(Sigma^2) without bias: averaged over many Gaussian samples, near the truth (sum of var^2).
    sigma = np.arange(1, P + 1, dtype=float) ** 2
    est = np.mean([gn.GradientSummary.of(rng.normal(size=(M, P)) * np.sqrt(sigma)).trace_sq for _ in range(4000)])
    assert est == pytest.approx(np.sum(sigma**2), rel=0.05)


def test_distance_check_tells_equal_from_different_means():
    rng = np.random.default_rng(1)
    M, P = 40, 200
    ref = gn.GradientSummary.of(rng.normal(size=(M, P)))
    same = gn.distance_check(gn.GradientSummary.of(rng.normal(size=(M, P))), ref)
    assert list(same) == list(gn.DIST2_COLUMNS)
    # White noise in P = 200 directions: the difference of the means has about P degrees of freedom.
    assert same["dist2_dof"] == pytest.approx(P, rel=0.3)
    assert same["dist2_p05"] < same["dist2_ratio"] < same["dist2_p95"] and 0.05 < same["dist2_p"] < 0.95
    shifted = gn.distance_check(gn.GradientSummary.of(rng.normal(size=(M, P)) + 1.0), ref)
    assert shifted["dist2_ratio"] > 10 and shifted["dist2_p"] < 1e-6


def test_measure_point_one_row_per_estimator(tiny, capsys):
    diffusion, model, data = tiny
    ests = gn.estimators(CFG, T)
    rows = gn.measure_point("init", model, diffusion, data, ests, CFG)
    assert [r["estimator"] for r in rows] == [e.name for e in ests]  # table order (the reference measured first)
    assert capsys.readouterr().out.startswith(f"estimator_variance: init, {gn.REFERENCE}:")
    for r, e in zip(rows, ests):
        assert r["point"] == "init" and r["minibatches"] == CFG.minibatches and r["rows"] == e.rows
        assert r["evals_per_minibatch"] == e.rows * e.evaluations(diffusion)
        assert r["cost"] == pytest.approx(r["trace"] * r["evals_per_minibatch"])
        assert r["trace"] > 0 and r["trace_se"] > 0 and r["loss_se"] > 0
        assert math.isnan(r["dist2_ratio"]) == (e.name == gn.REFERENCE)


def test_headline_is_the_trajectory_cost_over_eq12s_at_the_initial_weights():
    table = pd.DataFrame(
        [
            {"point": "init", "estimator": "trajectory", "cost": 30.0, "cost_se": 3.0},
            {"point": "init", "estimator": "eq12", "cost": 2.0, "cost_se": 0.4},
            {"point": "eq12", "estimator": "trajectory", "cost": 1.0, "cost_se": 0.1},
            {"point": "eq12", "estimator": "eq12", "cost": 1.0, "cost_se": 0.1},
        ]
    )
    head = gn.headline(table)
    assert list(head) == ["eq3_cost_x", "eq3_cost_x_se"]
    assert head["eq3_cost_x"] == 15.0 and head["eq3_cost_x_se"] == float(f"{15 * math.hypot(0.1, 0.2):.2g}")


def test_load_points_from_checkpoints(tmp_path):
    model = EpsMLP.seeded(MCFG, 3)
    config = {"diffusion": to_dict(DCFG), "model": MCFG.to_dict(), "train": {"seed": 3}}
    for name in ("eq3", "eq12"):
        (tmp_path / f"{name}.pt").write_bytes(save_checkpoint_bytes(model.state_dict(), config))
    points = gn.load_points(tmp_path, DCFG, MCFG, "params.yaml")
    assert list(points) == list(gn.POINTS) == ["init", "eq3", "eq12"]
    assert all(p.requires_grad for m in points.values() for p in m.parameters())
    # The initial weights are train_eq12's: EpsMLP.seeded with the training seed of its checkpoint.
    for a, b in zip(points["init"].parameters(), EpsMLP.seeded(MCFG, 3).parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match=r"params\.yaml: model = .* but .*eq3\.pt was trained with"):
        gn.load_points(tmp_path, DCFG, MLPConfig(hidden=9, n_blocks=1, emb_dim=4, data_dim=1), "params.yaml")
    (tmp_path / "eq12.pt").write_bytes(save_checkpoint_bytes(model.state_dict(), {**config, "train": {}}))
    with pytest.raises(DataError, match=r"eq12\.pt: checkpoint config has no training seed"):
        gn.load_points(tmp_path, DCFG, MCFG, "params.yaml")


def test_figure_of_a_table(tiny):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffusion, model, data = tiny
    cfg = EstimatorVarianceConfig(
        enabled=True, minibatches=3, rows_trajectory=1, rows_subsampled=2, terms=[2], rows_eq12=4, seed=0, threads=1
    )
    table, ests = gn.measure({p: model for p in gn.POINTS}, diffusion, data.numpy(), cfg)
    assert list(table["point"]) == [p for p in gn.POINTS for _ in ests]
    fig = figure(table, ests, T, cfg.minibatches)
    top, bottom = fig.axes[:2]
    assert top.get_yscale() == "log" and [t.get_text() for t in bottom.get_xticklabels()] == [e.label() for e in ests]
    plt.close(fig)
