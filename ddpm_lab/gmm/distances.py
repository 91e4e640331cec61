"""Distances between a generated sample and the TRUE mixture, each beside the band an exact
sampler of the same size reaches: a registry of statistics (STATISTICS), each one function plus
one `@statistic` entry (its label, figure axis and citation), which compare_samples, the floors,
the sweeps, the figures, the report and the README tables read.

Everything here compares a sample with the mixture itself, through its exact CDF: no reference
sample enters, so the only noise in a statistic is the generated sample's own.

1-D Wasserstein-1 (Vallender 1973; Bobkov & Ledoux 2019, "One-dimensional empirical measures,
order statistics, and Kantorovich transport distances", Mem. AMS):

    W1(F_n, F) = int |F_n(x) - F(x)| dx,

with F_n the empirical CDF of x_(1) <= ... <= x_(n). F_n is the constant i/n on
[x_(i), x_(i+1)), 0 left of x_(1) and 1 right of x_(n), so the integral is a sum of integrals of
|c - F| over intervals. Each is closed-form through the antiderivative of the mixture CDF,
F(x) = sum_k w_k Phi(z_k), z_k = (x - m_k) / s_k:

    A(x) = int_{-inf}^x F(t) dt = sum_k w_k s_k G(z_k),    G(z) = z Phi(z) + phi(z),     (1)
    B(x) = int_x^{inf} (1 - F(t)) dt = sum_k w_k s_k (phi(z_k) - z_k Phi(-z_k)),        (2)

(G is the integrated normal CDF, d/dz G = Phi; (2) is (1) for the reflected variable, written
with Phi(-z) so that the right tail does not cancel). On [a, b] = [x_(i), x_(i+1)] at level
c = i/n, let t be the point where F crosses c (t = a when F(a) >= c, t = b when F(b) <= c; F is
increasing). Then

    int_a^b |c - F| = [c (t - a) - (A(t) - A(a))] + [(A(b) - A(t)) - c (b - t)]
                    = c (2t - a - b) + A(a) + A(b) - 2 A(t),                              (3)

and W1 = A(x_(1)) + sum_i (3) + B(x_(n)). The crossing t is found by vectorised bisection to
float resolution; (3) is stationary in t at the crossing (d/dt = 2(c - F(t)) = 0), so an error
delta in t moves the result only by O(f delta^2). F crosses the levels i/n in only O(sqrt(n))
intervals (the crossings of the uniform empirical process), so the bisection is cheap.

Kolmogorov-Smirnov (Kolmogorov 1933): D_n = sup |F_n - F| = max_i max(i/n - F(x_(i)),
F(x_(i)) - (i-1)/n), as computed by scipy.stats.kstest.

D > 1: "w1" is the mean over coordinates of the marginal W1 and "ks" the largest marginal KS.
Marginals cannot see how mass is arranged jointly (two modes at (-2,-2), (2,2) and four at
(+-2, +-2) have identical marginals), so "sliced_w1" averages the 1-D W1 of projections u.x over
random directions u uniform on the sphere (sliced Wasserstein: Rabin et al. 2011; Bonneel et al.
2015). For a diagonal-covariance mixture u.x is again a mixture, with means m_k.u and standard
deviations sqrt(sum_d s_kd^2 u_d^2) (`project`), so the sliced distance is exact too. Uniform
directions are normalised standard normal vectors (Muller 1959; Marsaglia 1972).

Floors. A statistic of an exact sample is not zero: E W1(F_n, F) <= n^{-1/2} int sqrt(F(1-F))
(Bobkov & Ledoux 2019), and sqrt(n) D_n follows the Kolmogorov distribution. Rather than lean
on asymptotics, `floor_draws` computes the statistic on many exact samples of the same size: its
null distribution, summarised by `band` as median, p05, p95. A generated sample's ratio
value / median is read against p95 / median, the ratio an exact sampler exceeds 5% of the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special, stats

from ddpm_lab.gmm.mixture import GaussianMixture

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_BISECT_ITERS = 64  # halves any interval below float resolution (2^-64 of its width)
_CHUNK = 1 << 21  # at most this many (point, column, component) elements per temporary array


# -- validation helpers ------------------------------------------------------------------------
def _finite_array(value, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains non-finite values")
    return a


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def _require_1d_mixture(mixture: GaussianMixture, name: str) -> None:
    if mixture.dim != 1:
        raise ValueError(f"{name}: expected a 1-D mixture (D = 1), got D = {mixture.dim}")


# -- the mixture's 1-D CDF and its antiderivative ----------------------------------------------
def _cdf(x: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """F(x) = sum_k w_k Phi((x - m_k)/s_k), broadcasting x: (...,) against means, stds: (..., K)."""
    return special.ndtr((x[..., None] - means) / stds) @ weights


def _cdf_and_antiderivative(
    x: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F(x) and A(x) of Eq. (1) for x: (...,), means, stds: (..., K) broadcastable. Returns two (...,)."""
    z = (x[..., None] - means) / stds
    big_phi = special.ndtr(z)
    g = z * big_phi + _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return big_phi @ weights, (stds * g) @ weights


def _right_tail(x: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """B(x) of Eq. (2) for x: (...,), means, stds: (..., K). Returns (...,)."""
    z = (x[..., None] - means) / stds
    return (stds * (_INV_SQRT_2PI * np.exp(-0.5 * z * z) - z * special.ndtr(-z))) @ weights


def _w1_sorted_columns(xs: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact W1(F_n, F_l) for each column l of xs: (n, L), sorted along axis 0, against the 1-D
    mixture l with means, stds: (L, K) and weights (K,). Returns (L,)."""
    n, n_cols = xs.shape
    out = np.empty(n_cols)
    step = max(1, _CHUNK // max(1, n * weights.size))  # columns per chunk
    levels = (np.arange(1, n) / n)[:, None]  # c = i/n on [x_(i), x_(i+1)]: (n-1, 1)
    for lo in range(0, n_cols, step):
        x = xs[:, lo : lo + step]
        m, s = means[lo : lo + step], stds[lo : lo + step]  # (Lc, K), broadcast over the n rows
        f, a = _cdf_and_antiderivative(x, m, s, weights)  # (n, Lc)
        total = a[0] + _right_tail(x[-1], m, s, weights)  # the two tails, levels 0 and 1
        if n > 1:
            left, right = x[:-1], x[1:]
            c = np.broadcast_to(levels, left.shape)
            t, a_t = left.copy(), a[:-1].copy()  # F(a) >= c: F above the level all along
            below = f[1:] <= c  # F(b) <= c: F below the level all along
            t[below], a_t[below] = right[below], a[1:][below]
            cross = (f[:-1] < c) & ~below
            if np.any(cross):
                i, j = np.nonzero(cross)  # (segment, level) of each crossing
                t_lo, t_hi, level = left[i, j], right[i, j], c[i, j]
                mc, sc = m[j], s[j]  # (n_cross, K)
                for _ in range(_BISECT_ITERS):
                    mid = 0.5 * (t_lo + t_hi)
                    up = _cdf(mid, mc, sc, weights) < level
                    t_lo = np.where(up, mid, t_lo)
                    t_hi = np.where(up, t_hi, mid)
                root = 0.5 * (t_lo + t_hi)
                t[i, j] = root
                a_t[i, j] = _cdf_and_antiderivative(root, mc, sc, weights)[1]
            total = total + (c * (2 * t - left - right) + a[:-1] + a[1:] - 2 * a_t).sum(0)  # Eq. (3)
        out[lo : lo + step] = total
    return out


# -- public API ----------------------------------------------------------------------------------
def project(mixture: GaussianMixture, direction: np.ndarray) -> GaussianMixture:
    """The 1-D mixture of u.x for x ~ mixture (diagonal covariances), u = direction: (D,):
    means m_k.u, stds sqrt(sum_d s_kd^2 u_d^2). Returns a GaussianMixture with D = 1."""
    u = _finite_array(direction, "direction", 1)
    if u.shape != (mixture.dim,):
        raise ValueError(f"direction: expected shape ({mixture.dim},) for a {mixture.dim}-D mixture, got {u.shape}")
    if not np.any(u != 0):
        raise ValueError("direction: must not be the zero vector")
    stds = np.sqrt((mixture.stds**2) @ (u**2))
    return GaussianMixture(mixture.weights, (mixture.means @ u)[:, None], stds[:, None])


def exact_w1(x: np.ndarray, mixture1d: GaussianMixture) -> float:
    """W1 = int |F_n - F| between the empirical CDF of x: (n,) and a 1-D mixture's exact CDF,
    exact to float precision (Eqs. 1-3 of the module docstring)."""
    _require_1d_mixture(mixture1d, "mixture1d")
    xs = np.sort(_finite_array(x, "x", 1))[:, None]
    return float(_w1_sorted_columns(xs, mixture1d.means.T, mixture1d.stds.T, mixture1d.weights)[0])


def exact_ks(x: np.ndarray, mixture1d: GaussianMixture) -> float:
    """One-sample Kolmogorov-Smirnov statistic sup |F_n - F| of x: (n,) against a 1-D mixture."""
    _require_1d_mixture(mixture1d, "mixture1d")
    x = _finite_array(x, "x", 1)
    m, s, w = mixture1d.means[:, 0], mixture1d.stds[:, 0], mixture1d.weights
    # method only chooses how the p-value is computed (unused); "asymp" keeps large n cheap.
    return float(stats.kstest(x, lambda v: _cdf(np.asarray(v, dtype=np.float64), m, s, w), method="asymp").statistic)


def random_directions(dim: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n directions uniform on the unit sphere in R^dim (normalised standard normals). Returns (n, dim)."""
    dim, n = _positive_int(dim, "dim"), _positive_int(n, "n")
    g = rng.standard_normal((n, dim))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    while np.any(norms == 0):  # probability zero; redraw rather than divide by zero
        bad = norms[:, 0] == 0
        g[bad] = rng.standard_normal((int(bad.sum()), dim))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g / norms


def _check_sample(x, mixture: GaussianMixture, name: str) -> np.ndarray:
    x = _finite_array(x, name, 2)
    if x.shape[1] != mixture.dim:
        raise ValueError(f"{name}: expected shape (n, {mixture.dim}) for a {mixture.dim}-D mixture, got {x.shape}")
    return x


def _check_directions(directions, mixture: GaussianMixture) -> np.ndarray | None:
    if directions is None or mixture.dim == 1:
        return None
    u = _finite_array(directions, "directions", 2)
    if u.shape[1] != mixture.dim:
        raise ValueError(f"directions: expected shape (L, {mixture.dim}), got {u.shape}")
    if np.any(~np.any(u != 0, axis=1)):
        raise ValueError("directions: contains a zero vector")
    return u


def exact_cvm(x: np.ndarray, mixture1d: GaussianMixture) -> float:
    """Cramer-von Mises statistic n int (F_n - F)^2 dF of x: (n,) against a 1-D mixture's exact CDF
    (Cramer 1928; von Mises 1928), as computed by scipy.stats.cramervonmises."""
    _require_1d_mixture(mixture1d, "mixture1d")
    x = _finite_array(x, "x", 1)
    m, s, w = mixture1d.means[:, 0], mixture1d.stds[:, 0], mixture1d.weights
    return float(stats.cramervonmises(x, lambda v: _cdf(np.asarray(v, dtype=np.float64), m, s, w)).statistic)


@dataclass
class Sample:
    """A validated sample x: (n, D) beside its mixture, what every statistic's `compute` reads: the
    1-D marginal mixtures, the sliced-W1 directions (None for D = 1 or none given) and, computed
    once, the exact W1 of every marginal and projection (`w1_columns`: D + L values)."""

    x: np.ndarray
    mixture: GaussianMixture
    directions: np.ndarray | None

    @cached_property
    def marginals(self) -> list[GaussianMixture]:
        return [project(self.mixture, np.eye(self.mixture.dim)[d]) for d in range(self.mixture.dim)]

    @cached_property
    def w1_columns(self) -> np.ndarray:
        cols, mixes = [self.x], self.marginals
        if self.directions is not None:
            cols.append(self.x @ self.directions.T)
            mixes = mixes + [project(self.mixture, u) for u in self.directions]
        xs = np.sort(np.concatenate(cols, axis=1), axis=0)  # (n, D + L)
        means = np.stack([mx.means[:, 0] for mx in mixes])  # (D + L, K)
        stds = np.stack([mx.stds[:, 0] for mx in mixes])
        return _w1_sorted_columns(xs, means, stds, self.mixture.weights)


@dataclass(frozen=True)
class Statistic:
    """One registry entry: a distance of a sample from the exact mixture, judged against the floor
    band of an exact sampler of the same size (`floor_draws`): its value over the floor's median
    is the ratio `<name>_ratio` of the metrics, inside the band when at most `<name>_p95` (the
    floor's p95 over its median). Lower is better. label: tables; axis: figure axes; decided:
    whether `ddpm-lab compare` puts it in the family its Holm verdicts cover (ddpm_lab/tools/compare.py);
    compute(sample) -> the value, None where it does not apply."""

    name: str
    label: str
    axis: str
    compute: Callable[[Sample], float | None]
    cite: str
    decided: bool = True


STATISTICS: dict[str, Statistic] = {}


def statistic(name: str, label: str, axis: str, cite: str, decided: bool = True):
    """`@statistic("w1", "W1", ...)` on compute(sample) registers a distance: compare_samples, the
    floors, the sweeps, the figures, the report and the README tables read STATISTICS."""

    def add(compute: Callable[[Sample], float | None]):
        STATISTICS[name] = Statistic(name, label, axis, compute, cite, decided)
        return compute

    return add


@statistic("w1", "W1", "W1 / floor median\n(exact CDF; 1 = an exact sampler)", "Vallender 1973; Eqs. 1-3 above")
def _w1(sample: Sample) -> float:
    return float(np.mean(sample.w1_columns[: sample.mixture.dim]))  # the mean over coordinates


@statistic("ks", "KS", "KS / floor median\n(exact CDF; 1 = an exact sampler)", "Kolmogorov 1933")
def _ks(sample: Sample) -> float:
    return float(max(exact_ks(sample.x[:, d], m) for d, m in enumerate(sample.marginals)))  # the largest marginal


@statistic("sliced_w1", "sliced W1", "sliced W1 / floor median\n(random directions)", "Rabin et al. 2011")
def _sliced_w1(sample: Sample) -> float | None:
    return None if sample.directions is None else float(np.mean(sample.w1_columns[sample.mixture.dim :]))


@statistic(
    "cvm",
    "CvM",
    "Cramer-von Mises / floor median\n(exact CDF; 1 = an exact sampler)",
    "Cramer 1928; von Mises 1928",
    decided=False,  # a diagnostic: the recorded replicate studies predate it (docs/variants.md)
)
def _cvm(sample: Sample) -> float:
    return float(max(exact_cvm(sample.x[:, d], m) for d, m in enumerate(sample.marginals)))  # the largest marginal


def _statistics(x: np.ndarray, mixture: GaussianMixture, directions: np.ndarray | None) -> dict[str, float]:
    """statistics() on validated inputs: every registered statistic that applies."""
    sample = Sample(x, mixture, directions)
    values = {name: st.compute(sample) for name, st in STATISTICS.items()}
    return {name: v for name, v in values.items() if v is not None}


def statistics(x: np.ndarray, mixture: GaussianMixture, directions: np.ndarray | None = None) -> dict[str, float]:
    """The distances of a sample x: (n, D) from the exact mixture, one per registered statistic
    (STATISTICS): "w1": mean over coordinates of the marginal exact W1, "ks": largest marginal
    exact KS, "cvm": largest marginal Cramer-von Mises statistic, plus, when D > 1 and directions:
    (L, D) is given, "sliced_w1": mean over the directions u of the exact W1 of x @ u against
    project(mixture, u). Directions need not be unit vectors, but the distance scales with |u|."""
    return _statistics(_check_sample(x, mixture, "x"), mixture, _check_directions(directions, mixture))


def floor_draws(
    mixture: GaussianMixture, n: int, draws: int, rng: np.random.Generator, directions: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Each statistic of `statistics` on `draws` independent exact samples of size n: the null
    distribution of what an exact sampler scores at this n. Returns {name: (draws,) array}."""
    n, draws = _positive_int(n, "n"), _positive_int(draws, "draws")
    directions = _check_directions(directions, mixture)
    rows = [_statistics(mixture.sample(n, rng), mixture, directions) for _ in range(draws)]
    return {name: np.array([r[name] for r in rows]) for name in rows[0]}
