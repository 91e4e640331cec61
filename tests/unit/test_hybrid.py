"""The hybrid eps-predictor of the hybrid-oracle diagnostic (ddpm_lab.gmm.hybrid): which part
answers at which t, on the sampler's fixed-t path and on mixed batches, and its pure ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import eps_caller, sample
from ddpm_lab.gmm.hybrid import MODEL_HIGH, MODEL_LOW, HybridEps, hybrid, switch_points
from ddpm_lab.gmm.model import EpsMLP, MLPConfig


class Constant:
    """eps(x, t) = c for every row: tells which part answered."""

    def __init__(self, c: float):
        self.c = c

    def __call__(self, x, t):
        return torch.full_like(x, self.c)


def test_each_t_is_answered_by_its_side_of_t0():
    h = HybridEps(Constant(1.0), Constant(2.0), t0=3)
    x = torch.zeros(5, 2)
    t = torch.tensor([1, 3, 4, 10, 2])
    np.testing.assert_array_equal(h(x, t)[:, 0].numpy(), [1, 1, 2, 2, 1])
    eps = eps_caller(h, np.arange(10, 0, -1), 5)  # the sampler's path: h.sampling_eps
    assert [float(eps(x, t)[0, 0]) for t in (10, 4, 3, 1)] == [2, 2, 1, 1]


def test_hybrid_kinds_put_the_model_on_their_side():
    model, oracle = Constant(0.0), Constant(9.0)
    x = torch.zeros(2, 1)
    low, high = hybrid(model, oracle, MODEL_LOW, 5), hybrid(model, oracle, MODEL_HIGH, 5)
    t = torch.tensor([5, 6])
    assert low(x, t)[:, 0].tolist() == [0.0, 9.0] and high(x, t)[:, 0].tolist() == [9.0, 0.0]
    with pytest.raises(ValueError, match="unknown hybrid 'middle'"):
        hybrid(model, oracle, "middle", 5)


def test_pure_ends_draw_what_the_parts_draw_alone():
    """t0 = T with the model below is the model's own sampler (its fast fixed-t path); t0 = 0 is the
    other part's: the same bytes from the same generator."""
    d = DiffusionConfig(T=20, schedule="linear", beta_start=0.01, beta_end=0.3, variance="beta").build()
    model = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8, data_dim=1), 0).eval()
    other = Constant(0.1)
    for t0, alone in ((20, model), (0, other)):
        a, _ = sample(d, HybridEps(model, other, t0), (50, 1), torch.Generator().manual_seed(3))
        b, _ = sample(d, alone, (50, 1), torch.Generator().manual_seed(3))
        assert torch.equal(a, b), t0


def test_switch_points_clamp_to_T_and_sort():
    assert switch_points([700, 0, 2000, 1000, 10], 1000) == [0, 10, 700, 1000]


def test_gap_shares_split_the_exact_gap_by_range_of_t():
    import pandas as pd

    from ddpm_lab.gmm.hybrid import gap_shares

    t = np.arange(1, 11)
    e = pd.DataFrame({"t": t, "weight_eq12": 1.0 / t, "eps_error": np.full(10, 0.5)})
    g = gap_shares(e, [10, 0, 3])
    assert list(zip(g["t_from"], g["t_to"])) == [(1, 3), (4, 10)]
    assert g["gap"].tolist() == pytest.approx([0.5 * (1 + 1 / 2 + 1 / 3), 0.5 * sum(1 / k for k in range(4, 11))])
    assert g["share"].sum() == pytest.approx(1.0) and g["mean_e"].tolist() == [0.5, 0.5]


def test_gap_shares_close_their_ranges_at_0_and_T():
    """Switch points that stop short of T (or pass it) still give parts that add up to the whole gap."""
    import pandas as pd

    from ddpm_lab.gmm.hybrid import gap_shares

    t = np.arange(1, 1001)
    e = pd.DataFrame({"t": t, "weight_eq12": 1.0 / t, "eps_error": np.linspace(0.1, 1.0, 1000)})
    whole = float((e["weight_eq12"] * e["eps_error"]).sum())
    for t0s in ([0, 10, 30, 100], [10, 30, 100, 1000], [5, 2000]):
        g = gap_shares(e, t0s)
        assert g["t_from"].iloc[0] == 1 and g["t_to"].iloc[-1] == 1000
        assert g["gap"].sum() == pytest.approx(whole, rel=1e-12) and g["share"].sum() == pytest.approx(1.0)
    assert list(zip(*[gap_shares(e, [0, 10, 30, 100])[k] for k in ("t_from", "t_to")])) == [
        (1, 10),
        (11, 30),
        (31, 100),
        (101, 1000),
    ]
