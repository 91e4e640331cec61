"""Distribution metrics against the exact mixture, on cases with known answers. Seeded; every
tolerance is derived in a comment next to it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.distances import (
    STATISTICS,
    exact_cvm,
    exact_ks,
    exact_w1,
    floor_draws,
    project,
    random_directions,
    statistics,
)
from ddpm_lab.gmm.metrics import assigned_weights, compare_samples, mode_error_draws, mode_weights
from ddpm_lab.runtime.stats import band

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])
# Same marginals, different joint law: two modes on the diagonal vs four at the corners.
DIAG = GaussianMixture([0.5, 0.5], [[-2.0, -2.0], [2.0, 2.0]], [[0.5, 0.5]] * 2)
CORNERS = GaussianMixture([0.25] * 4, [[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]], [[0.5, 0.5]] * 4)


def cdf(mixture: GaussianMixture, v: float) -> float:
    return float(mixture.marginal_cdf(np.array([v]))[0])


def mean_abs_dev(mixture: GaussianMixture, c: float) -> float:
    """E|X - c| for a 1-D mixture: sum_k w_k s_k [2 phi(d) + d (2 Phi(d) - 1)], d = (c - m_k)/s_k."""
    m, s = mixture.means[:, 0], mixture.stds[:, 0]
    d = (c - m) / s
    return float(mixture.weights @ (s * (2 * stats.norm.pdf(d) + d * (2 * stats.norm.cdf(d) - 1))))


# -- exact W1 and KS --------------------------------------------------------------------------------
def test_exact_w1_matches_quadrature_of_the_cdf_gap():
    # Independent: adaptive quadrature of |F_n - F| on each interval between order statistics and
    # on the two tails (no antiderivative, no crossing point). quad reaches ~1e-10 here (the only
    # kink inside an interval is where F crosses i/n), so rel 1e-6 is loose.
    x = MIX.sample(50, np.random.default_rng(0))[:, 0]
    xs = np.sort(x)
    kw = dict(epsabs=1e-13, epsrel=1e-12, limit=500)
    total = integrate.quad(lambda v: cdf(MIX, v), -np.inf, xs[0], **kw)[0]
    total += integrate.quad(lambda v: 1 - cdf(MIX, v), xs[-1], np.inf, **kw)[0]
    for i in range(xs.size - 1):
        total += integrate.quad(lambda v: abs((i + 1) / xs.size - cdf(MIX, v)), xs[i], xs[i + 1], **kw)[0]
    assert exact_w1(x, MIX) == pytest.approx(total, rel=1e-6)
    assert exact_w1(x[::-1], MIX) == exact_w1(x, MIX)  # order of the sample is irrelevant


@pytest.mark.parametrize(
    "mixture, c",
    [(GaussianMixture([1.0], [1.5], [0.7]), 1.5), (GaussianMixture([1.0], [1.5], [0.7]), -0.4), (MIX, 0.9)],
)
def test_exact_w1_of_a_point_mass_is_the_mean_absolute_deviation(mixture, c):
    # All n points at c: F_n is a step at c and W1 = int |1{x >= c} - F| = E|X - c| in closed form
    # (s sqrt(2/pi) when c = m for one Gaussian). Both sides are float-exact: rel 1e-12.
    x = np.full(7, c)
    assert exact_w1(x, mixture) == pytest.approx(mean_abs_dev(mixture, c), rel=1e-12)
    if mixture.n_components == 1 and c == mixture.means[0, 0]:
        assert exact_w1(x, mixture) == pytest.approx(0.7 * math.sqrt(2 / math.pi), rel=1e-12)


def test_exact_w1_of_a_sample_beyond_the_mixture_is_the_mean_gap():
    # Every point 60 to the right, where F = 1 to float precision: F_n <= F everywhere, so
    # W1 = int (F - F_n) = mean(x) - E[X] exactly (E[X] = sum_k w_k m_k). Float error of a sum of
    # 1000 terms of size ~60: well below 1e-9.
    x = MIX.sample(1000, np.random.default_rng(1))[:, 0] + 60.0
    expected = x.mean() - MIX.weights @ MIX.means[:, 0]
    assert exact_w1(x, MIX) == pytest.approx(expected, abs=1e-9)


def test_exact_w1_agrees_with_scipy_against_a_huge_exact_sample():
    # Triangle inequality: |W1(F_n, F_M) - W1(F_n, F)| <= W1(F_M, F), and by Jensen
    # E W1(F_M, F) = int E|F_M - F| <= int sqrt(F (1 - F) / M) = J / sqrt(M). An exact sample's
    # W1 exceeds 3x its median well under 1% of the time (floor bands here: p95 ~ 2x median), so
    # 5 J / sqrt(M) = 0.0175 (J = 3.5) is a safe bound, still ~10x below the W1 values compared.
    rng = np.random.default_rng(2)
    big = MIX.sample(1_000_000, rng)[:, 0]
    j = integrate.quad(
        lambda v: math.sqrt(max(cdf(MIX, v) * (1 - cdf(MIX, v)), 0.0)), -12, 12, points=[-4, 0, 3], limit=500
    )[0]
    tol = 5 * j / math.sqrt(big.size)
    for n, shift in [(200, 0.0), (2000, 0.2)]:
        x = MIX.sample(n, rng)[:, 0] + shift
        assert abs(exact_w1(x, MIX) - stats.wasserstein_distance(x, big)) < tol


def test_exact_ks_is_the_largest_gap_at_the_sorted_points():
    # sup |F_n - F| is attained at an order statistic, just before or at the jump:
    # max_i max(i/n - F(x_(i)), F(x_(i)) - (i-1)/n). Same float operations up to order: 1e-14.
    x = MIX.sample(300, np.random.default_rng(3))[:, 0]
    f = MIX.marginal_cdf(np.sort(x))
    i = np.arange(1, x.size + 1)
    direct = max(np.max(i / x.size - f), np.max(f - (i - 1) / x.size))
    assert exact_ks(x, MIX) == pytest.approx(direct, abs=1e-14)
    assert exact_ks(np.full(5, 100.0), MIX) == pytest.approx(1.0)  # all mass left of the points


def test_exact_cvm_is_the_closed_form_sum_over_the_sorted_points():
    # n int (F_n - F)^2 dF = 1/(12 n) + sum_i ((2i - 1)/(2n) - F(x_(i)))^2 (Anderson 1962, Eq. 2):
    # the same sum scipy computes, here written out; float rounding only.
    x = MIX.sample(400, np.random.default_rng(8))[:, 0]
    f = MIX.marginal_cdf(np.sort(x))
    i = np.arange(1, x.size + 1)
    direct = 1 / (12 * x.size) + np.sum(((2 * i - 1) / (2 * x.size) - f) ** 2)
    assert exact_cvm(x, MIX) == pytest.approx(direct, rel=1e-12)
    # Under the null n * omega^2 has mean 1/6 (Anderson & Darling 1952): 200 exact samples of n = 400,
    # mean within 4 standard errors (the statistic's variance is 1/45 - 1/(60 n) ~ 0.022).
    rng = np.random.default_rng(9)
    null = [exact_cvm(MIX.sample(400, rng)[:, 0], MIX) for _ in range(200)]
    assert abs(np.mean(null) - 1 / 6) < 4 * math.sqrt(1 / 45 / 200)
    # A shifted sample is far outside: its statistic grows like n.
    assert exact_cvm(x + 1.0, MIX) > 20 * np.quantile(null, 0.95)


def test_exact_distances_reject_bad_input():
    with pytest.raises(ValueError, match="mixture1d"):
        exact_w1(np.zeros(3), CORNERS)
    with pytest.raises(ValueError, match="mixture1d"):
        exact_ks(np.zeros(3), CORNERS)
    with pytest.raises(ValueError, match="mixture1d"):
        exact_cvm(np.zeros(3), CORNERS)
    with pytest.raises(ValueError, match="^x: expected a 1-D"):
        exact_w1(np.zeros((3, 1)), MIX)
    with pytest.raises(ValueError, match="^x: contains non-finite"):
        exact_ks(np.array([0.0, np.nan]), MIX)
    with pytest.raises(ValueError, match="^x: expected a non-empty"):
        exact_w1(np.zeros(0), MIX)


# -- projections, directions, statistics ------------------------------------------------------------
def test_project_gives_marginals_and_the_law_of_projections():
    mix = GaussianMixture([0.2, 0.8], [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], [[0.3, 1.2, 0.7], [2.0, 0.4, 1.1]])
    e1 = project(mix, np.array([0.0, 1.0, 0.0]))
    assert e1.dim == 1
    np.testing.assert_array_equal(e1.means[:, 0], mix.means[:, 1])
    np.testing.assert_array_equal(e1.stds[:, 0], mix.stds[:, 1])
    np.testing.assert_array_equal(e1.weights, mix.weights)
    u = np.array([0.6, -0.8, 0.5])
    p = project(mix, u)
    np.testing.assert_allclose(p.means[:, 0], mix.means @ u, rtol=1e-15)
    np.testing.assert_allclose(p.stds[:, 0], np.sqrt((mix.stds**2 * u**2).sum(1)), rtol=1e-15)
    # The law of u.x itself: KS of 20k projected draws against p's exact CDF, at p-value > 1e-3
    # (fails 0.1% of the time for a correct projection; a wrong std or mean fails surely).
    xu = mix.sample(20_000, np.random.default_rng(4)) @ u
    assert stats.kstest(xu, lambda v: p.marginal_cdf(v)).pvalue > 1e-3
    with pytest.raises(ValueError, match="direction"):
        project(mix, np.ones(2))
    with pytest.raises(ValueError, match="direction"):
        project(mix, np.zeros(3))


def test_random_directions_are_seeded_unit_vectors_uniform_on_the_sphere():
    u = random_directions(3, 20_000, np.random.default_rng(5))
    assert u.shape == (20_000, 3)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(u, random_directions(3, 20_000, np.random.default_rng(5)))
    # Uniform on S^2: E u = 0 and E u u^T = I/3. Each coordinate has variance 1/3, so the mean of
    # 20k has SE sqrt(1/3/20000) = 0.0041 (bound 5 SE = 0.02); u_i^2 has variance 4/45, so the
    # second moments have SE sqrt(4/45/20000) = 0.0021 (bound 0.011), off-diagonals similar.
    assert np.all(np.abs(u.mean(0)) < 0.02)
    np.testing.assert_allclose(u.T @ u / u.shape[0], np.eye(3) / 3, atol=0.011)
    with pytest.raises(ValueError, match="dim"):
        random_directions(0, 3, np.random.default_rng(0))


def test_statistics_keys_and_their_definitions():
    rng = np.random.default_rng(6)
    x1 = MIX.sample(500, rng)
    one_d = set(STATISTICS) - {"sliced_w1"}  # every registered statistic; D = 1: no slices
    assert set(statistics(x1, MIX)) == one_d
    assert set(statistics(x1, MIX, random_directions(1, 4, rng))) == one_d
    s1 = statistics(x1, MIX)
    assert s1["w1"] == pytest.approx(exact_w1(x1[:, 0], MIX), rel=1e-12)
    assert s1["ks"] == exact_ks(x1[:, 0], MIX)
    x2 = CORNERS.sample(500, rng)
    marg = [project(CORNERS, e) for e in np.eye(2)]
    s2 = statistics(x2, CORNERS, np.eye(2))  # slicing along the axes reproduces the marginals
    assert set(s2) == set(STATISTICS)
    assert s2["cvm"] == max(exact_cvm(x2[:, d], marg[d]) for d in range(2))
    w1s = [exact_w1(x2[:, d], marg[d]) for d in range(2)]
    assert s2["w1"] == pytest.approx(np.mean(w1s), rel=1e-12)
    assert s2["sliced_w1"] == pytest.approx(s2["w1"], rel=1e-12)
    assert s2["ks"] == max(exact_ks(x2[:, d], marg[d]) for d in range(2))
    u = random_directions(2, 3, rng)
    slices = np.mean([exact_w1(x2 @ v, project(CORNERS, v)) for v in u])
    assert statistics(x2, CORNERS, u)["sliced_w1"] == pytest.approx(slices, rel=1e-12)
    with pytest.raises(ValueError, match="^x: expected shape"):
        statistics(x2, MIX)
    with pytest.raises(ValueError, match="directions"):
        statistics(x2, CORNERS, np.ones((3, 3)))


def test_band_is_median_and_5_95_percentiles():
    v = np.arange(101.0)
    assert band(v) == {"median": 50.0, "p05": 5.0, "p95": 95.0}
    with pytest.raises(ValueError, match="values"):
        band(np.array([]))


# -- floors ---------------------------------------------------------------------------------------------
def test_floor_band_covers_exact_samples_and_flags_a_shift():
    rng = np.random.default_rng(7)
    floors = floor_draws(MIX, 2000, 200, rng)
    assert set(floors) == set(STATISTICS) - {"sliced_w1"} and floors["w1"].shape == (200,)
    # Fresh exact samples of the same n land in [p05, p95] with probability 0.9; over 50 of them
    # the fraction has SE sqrt(0.09/50) = 0.04, and 200 floor draws move each percentile by ~1.5%
    # coverage: >= 0.75 is ~3.5 SE below 0.9.
    fresh = floor_draws(MIX, 2000, 50, rng)
    for name, vals in fresh.items():
        b = band(floors[name])
        assert np.mean((b["p05"] <= vals) & (vals <= b["p95"])) >= 0.75, name
    # Shifted by 0.3: W1 of a shifted F is exactly 0.3, so by the triangle inequality the shifted
    # sample's W1 >= 0.3 - W1(unshifted) ~ 0.3 - 0.03 at n = 20k, against a floor median ~0.02:
    # ratio ~ 13, while an exact sampler's p95 ratio is ~ 2. Require 4x the p95 ratio.
    n = 20_000
    floors = floor_draws(MIX, n, 60, rng)
    pi, pi_se = assigned_weights(MIX)
    headline, details = compare_samples(
        MIX.sample(n, rng)[None] + 0.3, MIX, floors, pi, pi_se, mode_error_draws(pi, n, 500, rng), None
    )
    assert details["w1"]["value"] >= 0.3 - 2 * details["w1"]["floor"]["p95"]
    assert headline["w1_ratio"] > 4 * headline["w1_p95"]
    assert headline["ks_ratio"] > 4 * headline["ks_p95"]
    assert not details["w1"]["inside_band"]


def test_sliced_w1_sees_the_joint_structure_the_marginals_miss():
    # DIAG and CORNERS have identical marginals (0.5 N(-2, 0.25) + 0.5 N(2, 0.25) per coordinate),
    # so DIAG's samples are exact samples of CORNERS' marginals: per-coordinate w1 and ks stay at
    # the floor. (Under DIAG the two coordinates are fully dependent, so the mean of their W1s is
    # more spread than under CORNERS; allow 1.5x the p95 ratio.) Along (1, 1)/sqrt(2) DIAG has modes
    # at +-2.83 and CORNERS puts half its mass at 0: a projected W1 of order 1, against a floor
    # ~0.05 at n = 2000, so the sliced ratio is ~15 vs a p95 ratio ~1.7. Require 5x.
    rng = np.random.default_rng(8)
    u = random_directions(2, 64, rng)
    n = 2000
    floors = floor_draws(CORNERS, n, 30, rng, u)
    assert set(floors) == set(STATISTICS)
    pi, pi_se = assigned_weights(CORNERS, rng, 200_000)
    headline, details = compare_samples(
        DIAG.sample(n, rng)[None], CORNERS, floors, pi, pi_se, mode_error_draws(pi, n, 500, rng), u
    )
    assert headline["w1_ratio"] < 1.5 * headline["w1_p95"]
    assert headline["ks_ratio"] < 1.5 * headline["ks_p95"]
    assert headline["sliced_w1_ratio"] > 5 * headline["sliced_w1_p95"]
    # Mode weights see it too: DIAG fills only two of the four corners (error ~0.25 vs p95 ~0.025).
    assert headline["mode_err"] > 5 * headline["mode_p95"]


# -- mode weights ---------------------------------------------------------------------------------------
def test_mode_weights_of_well_separated_mixture():
    mix = GaussianMixture([0.25, 0.75], [-10.0, 10.0], [1.0, 1.0])
    x = np.concatenate([np.full((25, 1), -10.0), np.full((75, 1), 9.0)])
    np.testing.assert_allclose(mode_weights(mix, x), [0.25, 0.75])


@pytest.mark.parametrize(
    "mixture",
    [
        MIX,
        GaussianMixture([0.6, 0.4], [0.0, 0.5], [0.5, 2.0]),  # the wide component wins both tails
        GaussianMixture([0.5, 0.3, 0.2, 0.0], [0.0, 1.0, 1.2, -1.0], [1.0, 1.0, 0.3, 1.0]),  # equal stds, weightless
    ],
)
def test_assigned_weights_exact_matches_monte_carlo(mixture):
    # 2M draws: each MC fraction has SE sqrt(pi (1 - pi) / 2e6) <= 3.6e-4; 5 SE fails with
    # probability ~6e-7 per component.
    pi, se = assigned_weights(mixture)
    assert np.all(se == 0) and pi.sum() == pytest.approx(1.0, abs=1e-14)
    n = 2_000_000
    mc = mode_weights(mixture, mixture.sample(n, np.random.default_rng(9)))
    assert np.all(np.abs(pi - mc) <= 5 * np.sqrt(pi * (1 - pi) / n) + 1e-12)
    assert pi[mixture.weights == 0].sum() == 0


def test_assigned_weights_of_the_default_mixture():
    # Earlier Monte-Carlo estimate [0.3015, 0.4964, 0.2021]: with ~2e5 draws (the old reference
    # size) each entry has SE ~1.1e-3, so 3 SE = 3.4e-3 bounds the disagreement. The rule's own
    # bias |pi - w| is ~1.6e-3 here: the overlap of N(-4, 0.5^2) and N(0, 0.8^2) is small.
    pi, _ = assigned_weights(MIX)
    np.testing.assert_allclose(pi, [0.3015, 0.4964, 0.2021], atol=3.4e-3)
    assert 0 < np.max(np.abs(pi - MIX.weights)) < 5e-3


def test_assigned_weights_closed_forms():
    # Equal stds: one linear boundary x* = (m1 + m2)/2 + s^2 log(w1/w2) / (m2 - m1) and
    # pi_1 = w1 Phi((x* - m1)/s) + w2 Phi((x* - m2)/s). Float-exact: rel 1e-12.
    w, m, s = np.array([0.7, 0.3]), np.array([-1.0, 1.0]), 1.3
    xb = 0.0 + s**2 * math.log(w[0] / w[1]) / 2.0
    pi1 = w @ special.ndtr((xb - m) / s)
    pi, _ = assigned_weights(GaussianMixture(w, m, [s, s]))
    np.testing.assert_allclose(pi, [pi1, 1 - pi1], rtol=1e-12)
    # Identical components: no boundary; the larger weight wins everywhere.
    pi, _ = assigned_weights(GaussianMixture([0.4, 0.6], [1.0, 1.0], [2.0, 2.0]))
    np.testing.assert_array_equal(pi, [0.0, 1.0])


def test_assigned_weights_monte_carlo_in_2d():
    with pytest.raises(ValueError, match="rng"):
        assigned_weights(CORNERS)
    # Corners 8 stds apart: the rule is exact up to ~Phi(-4) = 3e-5, so pi ~ w within the MC noise,
    # SE sqrt(0.25 * 0.75 / 1e5) = 1.4e-3 (5 SE bound).
    n_mc = 100_000
    pi, se = assigned_weights(CORNERS, np.random.default_rng(10), n_mc)
    np.testing.assert_allclose(se, np.sqrt(pi * (1 - pi) / n_mc))
    assert np.all(np.abs(pi - 0.25) < 5 * se)
    pi2, _ = assigned_weights(CORNERS, np.random.default_rng(10), n_mc)
    np.testing.assert_array_equal(pi, pi2)  # seeded


def test_mode_error_draws_match_the_binomial_mean_absolute_deviation():
    # K = 2: both |c_k/n - pi_k| are equal, so the mean of the draws estimates E|X - n p| / n for
    # X ~ Bin(n, p), summed exactly over the pmf (~ sqrt(2/pi) sqrt(p (1-p)/n) = 0.0116). Its SD is
    # ~ sqrt(1 - 2/pi) sqrt(p (1-p)/n) = 0.0087, so over 20k draws SE = 6e-5: bound 5 SE = 3e-4.
    n, p = 1000, 0.3
    vals = mode_error_draws(np.array([p, 1 - p]), n, 20_000, np.random.default_rng(11))
    k = np.arange(n + 1)
    mad = float(np.sum(np.abs(k - n * p) * stats.binom.pmf(k, n, p))) / n
    assert vals.shape == (20_000,)
    assert abs(vals.mean() - mad) < 3e-4
    # K = 3: max_k E|dev_k| <= E max_k |dev_k| <= sum_k E|dev_k| (normal approximation of each
    # E|dev_k| = sqrt(2/pi) sigma_k is within 1% at n = 1000; margin 3%).
    pi = np.array([0.2, 0.5, 0.3])
    vals = mode_error_draws(pi, n, 20_000, np.random.default_rng(12))
    e = math.sqrt(2 / math.pi) * np.sqrt(pi * (1 - pi) / n)
    assert 0.97 * e.max() < vals.mean() < 1.03 * e.sum()
    with pytest.raises(ValueError, match="pi"):
        mode_error_draws(np.array([0.5, 0.6]), n, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="draws"):
        mode_error_draws(pi, n, 0, np.random.default_rng(0))


# -- compare_samples --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mixture, directions", [(MIX, None), (CORNERS, random_directions(2, 16, np.random.default_rng(13)))]
)
def test_compare_samples_on_exact_samples_sits_in_the_floor_band(mixture, directions):
    # The pooled sample of an exact sampler is one more draw from each statistic's null
    # distribution: it lies in [p05, p95] 90% of the time. Seeded and deterministic; the loose
    # bounds [p05/2, 1.5 p95] (as ratios to the median) fail only for a floor drawn at the wrong n
    # or a wrong statistic, whose ratios scale like sqrt(n_pooled / n) ~ 1.7 or more.
    rng = np.random.default_rng(14)
    s, n = 3, 2000
    floors = floor_draws(mixture, s * n, 60, rng, directions)
    pi, pi_se = assigned_weights(mixture, rng, 200_000)
    mode_floor = mode_error_draws(pi, s * n, 2000, rng)
    samples = np.stack([mixture.sample(n, rng) for _ in range(s)])
    headline, details = compare_samples(samples, mixture, floors, pi, pi_se, mode_floor, directions)
    names = [name for name in STATISTICS if directions is not None or name != "sliced_w1"]  # every registered one
    assert set(headline) == {f"{a}_{b}" for a in names for b in ("ratio", "p95")} | {"mode_err", "mode_p95"}
    for name in names:
        d = details[name]
        assert d["floor_ratio"]["p05"] / 2 <= headline[f"{name}_ratio"] <= 1.5 * headline[f"{name}_p95"], name
        assert d["ratio"] == headline[f"{name}_ratio"] and len(d["per_seed"]) == s
        assert d["floor"] == band(floors[name])
    # Mode error of an exact sampler: draw from its own null; 3x p95 is far out in the tail
    # (a Gaussian-like maximum: p95 ~ 2 sigma, 3x p95 ~ 6 sigma).
    assert headline["mode_err"] <= 3 * headline["mode_p95"]
    mode = details["mode"]
    np.testing.assert_allclose(mode["mode_weights"], mode_weights(mixture, samples.reshape(-1, mixture.dim)))
    assert mode["rule_bias"] == pytest.approx(np.max(np.abs(pi - mixture.weights)))
    np.testing.assert_allclose(mode["binomial_se"], np.sqrt(pi * (1 - pi) / (s * n)))
    assert max(abs(z) for z in mode["z"]) < 5
    assert details["n_pooled"] == s * n and details["n_seeds"] == s
    json.dumps([headline, details], allow_nan=False)  # plain, strict-JSON values only


def test_compare_samples_rejects_bad_input():
    rng = np.random.default_rng(15)
    floors = floor_draws(MIX, 100, 5, rng)
    pi, pi_se = assigned_weights(MIX)
    mf = mode_error_draws(pi, 100, 5, rng)
    x = MIX.sample(100, rng)[None]
    with pytest.raises(ValueError, match="^samples"):
        compare_samples(x[0], MIX, floors, pi, pi_se, mf, None)
    with pytest.raises(ValueError, match="^samples"):
        compare_samples(x, CORNERS, floors, pi, pi_se, mf, None)
    with pytest.raises(ValueError, match="^floors"):
        compare_samples(x, MIX, {"w1": floors["w1"]}, pi, pi_se, mf, None)
    with pytest.raises(ValueError, match="^floors"):
        compare_samples(x, MIX, {**floors, "ks": np.zeros(5)}, pi, pi_se, mf, None)
    with pytest.raises(ValueError, match="^pi:"):
        compare_samples(x, MIX, floors, pi[:2], pi_se, mf, None)
    with pytest.raises(ValueError, match="^pi_se"):
        compare_samples(x, MIX, floors, pi, -np.ones(3), mf, None)
    with pytest.raises(ValueError, match="^mode_floor"):
        compare_samples(x, MIX, floors, pi, pi_se, np.array([]), None)


# -- superseded two-sample statistics (still imported by tests/unit/test_sampling.py) ----------------------
