"""Distribution metrics on cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from ddpm_lab.gmm import GaussianMixture
from ddpm_lab.metrics import compare_samples, ks, mode_weights, noise_floor, w1

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])


def test_identical_samples_have_zero_distance():
    x = np.random.default_rng(0).normal(size=(500, 1))
    assert w1(x, x) == 0.0 and ks(x, x) == 0.0


def test_shift_gives_w1_equal_to_the_shift_and_ks_one_when_disjoint():
    x = np.random.default_rng(0).uniform(size=(300, 1))
    assert w1(x, x + 2.5) == pytest.approx(2.5)
    assert ks(x, x + 2.5) == 1.0


def test_mode_weights_of_well_separated_mixture():
    mix = GaussianMixture([0.25, 0.75], [-10.0, 10.0], [1.0, 1.0])
    x = np.concatenate([np.full((25, 1), -10.0), np.full((75, 1), 9.0)])
    np.testing.assert_allclose(mode_weights(mix, x), [0.25, 0.75])


def test_true_samples_score_at_the_noise_floor():
    # A true sample judged like a generated one: ratios near 1 (3 seeds, median; the spread
    # of a ratio at n = 5000 is about +-30%, so [0.5, 1.6] fails only for a wrong floor).
    rng = np.random.default_rng(1)
    floor = noise_floor(MIX, 5000, 5, rng)
    out = compare_samples(np.stack([MIX.sample(5000, rng) for _ in range(3)]), MIX, floor, rng)
    assert 0.5 < out["w1_ratio"] < 1.6 and 0.5 < out["ks_ratio"] < 1.6
    assert out["mode_weight_max_abs_err"] < 0.02


def test_shifted_samples_are_far_above_the_floor():
    rng = np.random.default_rng(2)
    floor = noise_floor(MIX, 5000, 3, rng)
    out = compare_samples(MIX.sample(5000, rng)[None] + 0.3, MIX, floor, rng)
    # W1 between the shifted sample and a fresh true one is 0.3 up to sampling noise of the
    # order of the floor (~0.06 at n = 5000); allow two floors either side.
    assert out["w1"] == pytest.approx(0.3, abs=2 * out["w1_floor"])
    assert out["w1_ratio"] > 3
