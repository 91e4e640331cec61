"""Distances between a generated sample and the TRUE mixture, each beside the band an exact
sampler of the same size reaches; mode weights judged against what the assignment rule gives
exact samples.

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

Mode weights. Assigning x to argmax_k [log w_k + log N_k(x)] (the Bayes classifier) does not
give w_k even for exact samples, because components overlap. The fractions it does give are
pi_k = P(argmax_j [...] = k) for x ~ p (`assigned_weights`): in 1-D exact, because the boundary
between two components solves log w_j N_j(x) = log w_k N_k(x), a quadratic in x (linear when
s_j = s_k); for D > 1 by Monte Carlo. An exact sampler's assigned fractions c/n with
c ~ Multinomial(n, pi) give the null distribution of the mode error max_k |c_k/n - pi_k|
(`mode_error_draws`); |pi - w| is the rule's own bias, reported separately.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.stats import band, in_band

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


def _statistics(x: np.ndarray, mixture: GaussianMixture, directions: np.ndarray | None) -> dict[str, float]:
    """statistics() on validated inputs."""
    dim = mixture.dim
    marginals = [project(mixture, np.eye(dim)[d]) for d in range(dim)]
    cols, mixes = [x], marginals
    if directions is not None:
        cols.append(x @ directions.T)
        mixes = marginals + [project(mixture, u) for u in directions]
    xs = np.sort(np.concatenate(cols, axis=1), axis=0)  # (n, D + L)
    means = np.stack([mx.means[:, 0] for mx in mixes])  # (D + L, K)
    stds = np.stack([mx.stds[:, 0] for mx in mixes])
    w1s = _w1_sorted_columns(xs, means, stds, mixture.weights)
    out = {"w1": float(np.mean(w1s[:dim])), "ks": float(max(exact_ks(x[:, d], marginals[d]) for d in range(dim)))}
    if directions is not None:
        out["sliced_w1"] = float(np.mean(w1s[dim:]))
    return out


def statistics(x: np.ndarray, mixture: GaussianMixture, directions: np.ndarray | None = None) -> dict[str, float]:
    """The distances of a sample x: (n, D) from the exact mixture: {"w1": mean over coordinates
    of the marginal exact W1, "ks": largest marginal exact KS}, plus, when D > 1 and directions:
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


def _stable_mass(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Phi(hi) - Phi(lo) elementwise, through the upper tail where lo > 0 (no cancellation)."""
    return np.where(lo > 0, special.ndtr(-lo) - special.ndtr(-hi), special.ndtr(hi) - special.ndtr(lo))


def _boundaries_1d(w: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """All real x where log w_j N_j(x) = log w_k N_k(x) for some pair j < k of components with
    w > 0: roots of a x^2 + b x + c = 0 with a = 1/(2 s_k^2) - 1/(2 s_j^2), b = m_j/s_j^2 - m_k/s_k^2,
    c = [log w_j - log s_j - m_j^2/(2 s_j^2)] - [same for k]. Returns sorted (R,)."""
    live = np.flatnonzero(w > 0)
    j, k = np.triu_indices(live.size, 1)
    j, k = live[j], live[k]
    v = s**2
    const = np.log(w[live]) - np.log(s[live]) - m[live] ** 2 / (2 * v[live])
    const_full = np.zeros_like(w)
    const_full[live] = const
    qa = 1 / (2 * v[k]) - 1 / (2 * v[j])
    qb = m[j] / v[j] - m[k] / v[k]
    qc = const_full[j] - const_full[k]
    roots = []
    lin = qa == 0  # equal stds: b x + c = 0
    ok = lin & (qb != 0)
    roots.append(-qc[ok] / qb[ok])
    quad = ~lin
    disc = qb[quad] ** 2 - 4 * qa[quad] * qc[quad]
    real = disc >= 0
    qa_, qb_, qc_ = qa[quad][real], qb[quad][real], qc[quad][real]
    q = -0.5 * (qb_ + np.copysign(np.sqrt(disc[real]), qb_))  # stable form (Numerical Recipes 5.6)
    roots.append(q / qa_)
    nz = q != 0
    roots.append(qc_[nz] / q[nz])
    r = np.concatenate(roots)
    return np.sort(r[np.isfinite(r)])


def assignment_intervals(mixture: GaussianMixture) -> tuple[np.ndarray, np.ndarray]:
    """The intervals of a 1-D mixture's line that the assignment rule argmax_k [log w_k + log N_k(x)]
    gives one component each: edges (R + 2,) from -inf to +inf through every pairwise boundary
    (_boundaries_1d), and the winner (R + 1,) of each interval, found at an interior point."""
    _require_1d_mixture(mixture, "mixture")
    r = _boundaries_1d(mixture.weights, mixture.means[:, 0], mixture.stds[:, 0])
    edges = np.concatenate([[-np.inf], r, [np.inf]])
    if r.size == 0:
        probe = np.zeros(1)
    else:
        pad = np.maximum(1.0, np.abs(r[[0, -1]]))
        probe = np.concatenate([[r[0] - pad[0]], 0.5 * (r[:-1] + r[1:]), [r[-1] + pad[1]]])
    return edges, mixture.assign(probe[:, None])


def assigned_weights(
    mixture: GaussianMixture, rng: np.random.Generator | None = None, n_mc: int = 1_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """pi_k = P(argmax_j [log w_j + log N_j(x)] = k) for x ~ mixture, and its standard error.

    1-D: exact (se = 0): the real boundaries between every pair of components split the line
    into intervals, each won by one component (found at an interior point), and
    pi_k = sum over intervals [a, b] won by k of sum_j w_j [Phi_j(b) - Phi_j(a)].
    D > 1: the fraction of n_mc draws of rng assigned to k, se = sqrt(pi (1 - pi) / n_mc).
    Returns ((K,), (K,))."""
    w, kk = mixture.weights, mixture.n_components
    if mixture.dim == 1:
        m, s = mixture.means[:, 0], mixture.stds[:, 0]
        edges, winner = assignment_intervals(mixture)
        mass = _stable_mass((edges[:-1, None] - m) / s, (edges[1:, None] - m) / s) @ w  # (R + 1,)
        return np.bincount(winner, weights=mass, minlength=kk), np.zeros(kk)
    if rng is None:
        raise ValueError("rng: assigned_weights of a mixture with D > 1 is a Monte-Carlo estimate: pass rng")
    n_mc = _positive_int(n_mc, "n_mc")
    counts = np.zeros(kk)
    step = max(1, _CHUNK // (kk * mixture.dim))
    for lo in range(0, n_mc, step):
        counts += _assigned_counts(mixture, mixture.sample(min(step, n_mc - lo), rng))
    pi = counts / n_mc
    return pi, np.sqrt(pi * (1 - pi) / n_mc)


def _assigned_counts(mixture: GaussianMixture, x: np.ndarray) -> np.ndarray:
    """How many rows of x: (n, D) the rule assigns to each component. Returns (K,) float."""
    return np.bincount(mixture.assign(x), minlength=mixture.n_components).astype(np.float64)


def mode_weights(mixture: GaussianMixture, x: np.ndarray) -> np.ndarray:
    """Fraction of samples x: (n, D) whose most probable component is k. Returns (K,)."""
    return _assigned_counts(mixture, x) / x.shape[0]


def _check_probabilities(pi, k: int | None, name: str) -> np.ndarray:
    p = _finite_array(pi, name, 1)
    if k is not None and p.shape != (k,):
        raise ValueError(f"{name}: expected shape ({k},), got {p.shape}")
    if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name}: expected probabilities summing to 1, got {p.tolist()}")
    return p / p.sum()


def mode_error_draws(pi: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """max_k |c_k/n - pi_k| for `draws` independent c ~ Multinomial(n, pi), pi: (K,): the null
    distribution of the mode error of an exact sampler with n draws. Returns (draws,)."""
    p = _check_probabilities(pi, None, "pi")
    n, draws = _positive_int(n, "n"), _positive_int(draws, "draws")
    c = rng.multinomial(n, p, size=draws)  # (draws, K)
    return np.abs(c / n - p).max(1)


def exact_reference(mixture: GaussianMixture, n: int, draws: int, n_directions: int, rng: np.random.Generator) -> dict:
    """Everything compare_samples needs beside the samples, for pooled samples of size n, drawn
    from rng in a fixed order: the sliced-W1 directions (D > 1 only: n_directions of
    random_directions; None for D = 1, which draws nothing), the floors of each statistic
    (floor_draws: `draws` exact samples of size n), the assignment rule's pi and its standard
    error (assigned_weights) and the mode-error floor (mode_error_draws, `draws` multinomials).
    Returns {"floors", "pi", "pi_se", "mode_floor", "directions"}: compare_samples(x, mixture, **ref)."""
    n, draws = _positive_int(n, "n"), _positive_int(draws, "draws")
    directions = random_directions(mixture.dim, n_directions, rng) if mixture.dim > 1 else None
    floors = floor_draws(mixture, n, draws, rng, directions)
    pi, pi_se = assigned_weights(mixture, rng)
    mode_floor = mode_error_draws(pi, n, draws, rng)
    return {"floors": floors, "pi": pi, "pi_se": pi_se, "mode_floor": mode_floor, "directions": directions}


def compare_samples(
    samples: np.ndarray,
    mixture: GaussianMixture,
    floors: dict[str, np.ndarray],
    pi: np.ndarray,
    pi_se: np.ndarray,
    mode_floor: np.ndarray,
    directions: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """Judge generated samples: (S, n, D) (S sampling seeds) against the exact mixture.

    The seeds are pooled: every statistic is computed on the (S*n, D) pooled sample, so
    `floors` (from floor_draws, with the same directions) and `mode_floor` (from
    mode_error_draws) MUST have been drawn at n_pooled = S*n; this cannot be checked from the
    arrays. pi, pi_se: (K,) from assigned_weights.

    Returns (headline, details), JSON-serialisable:
    headline: for each statistic s: s_ratio = value / median floor, s_p95 = p95 / median of the
      floor (an exact sampler's ratio at its 95th percentile: s_ratio <= s_p95 is inside the
      band); mode_err = max_k |w^_k - pi_k| (w^ the pooled assigned fractions), mode_p95 = p95
      of mode_floor.
    details: {s: {value, ratio, floor: {median, p05, p95}, floor_ratio: {p05, p95} (over the
      median), inside_band (p05 <= value <= p95), per_seed (s on each seed's n draws: spread
      only, against a floor at S*n they are not comparable)}, mode: {mode_weights,
      assigned_weights_exact, assigned_weights_se, true_weights, rule_bias = max_k |pi_k - w_k|,
      mode_err, binomial_se = sqrt(pi_k (1 - pi_k) / n_pooled), z = (w^_k - pi_k) /
      sqrt(binomial_se^2 + pi_se^2) (None where that is 0), mode_band}, n_pooled, n_seeds}."""
    x = _finite_array(samples, "samples", 3)
    if x.shape[2] != mixture.dim:
        raise ValueError(f"samples: expected shape (S, n, {mixture.dim}) for a {mixture.dim}-D mixture, got {x.shape}")
    directions = _check_directions(directions, mixture)
    k = mixture.n_components
    pi = _check_probabilities(pi, k, "pi")
    pi_se = _finite_array(pi_se, "pi_se", 1)
    if pi_se.shape != (k,) or np.any(pi_se < 0):
        raise ValueError(f"pi_se: expected {k} non-negative standard errors, got {pi_se.tolist()}")
    mode_floor = _finite_array(mode_floor, "mode_floor", 1)
    n_seeds, n_pooled = x.shape[0], x.shape[0] * x.shape[1]
    pooled = x.reshape(n_pooled, mixture.dim)

    values = _statistics(pooled, mixture, directions)
    bands = {}
    for name in values:
        if name not in floors:
            raise ValueError(f"floors: no floor draws for statistic {name!r} (has {sorted(floors)})")
        bands[name] = band(np.asarray(floors[name], dtype=np.float64))
        if bands[name]["median"] <= 0:
            raise ValueError(f"floors: the median floor of {name!r} is {bands[name]['median']}: expected > 0")
    per_seed = [_statistics(xs, mixture, directions) for xs in x]

    headline, details = {}, {}
    for name, value in values.items():
        b = bands[name]
        med = b["median"]
        headline[f"{name}_ratio"] = value / med
        headline[f"{name}_p95"] = b["p95"] / med
        details[name] = {
            "value": value,
            "ratio": value / med,
            "floor": b,
            "floor_ratio": {"p05": b["p05"] / med, "p95": b["p95"] / med},
            "inside_band": in_band(b, value),
            "per_seed": [r[name] for r in per_seed],
        }

    w_hat = mode_weights(mixture, pooled)
    mode_err = float(np.max(np.abs(w_hat - pi)))
    mode_band = band(mode_floor)
    headline["mode_err"] = mode_err
    headline["mode_p95"] = mode_band["p95"]
    binom_se = np.sqrt(pi * (1 - pi) / n_pooled)
    total_se = np.hypot(binom_se, pi_se)
    z = [float(d / t) if t > 0 else None for d, t in zip(w_hat - pi, total_se)]
    details["mode"] = {
        "mode_weights": w_hat.tolist(),
        "assigned_weights_exact": pi.tolist(),
        "assigned_weights_se": pi_se.tolist(),
        "true_weights": mixture.weights.tolist(),
        "rule_bias": float(np.max(np.abs(pi - mixture.weights))),
        "mode_err": mode_err,
        "binomial_se": binom_se.tolist(),
        "z": z,
        "mode_band": mode_band,
    }
    details["n_pooled"] = int(n_pooled)
    details["n_seeds"] = int(n_seeds)
    return headline, details
