"""Judging generated samples against the TRUE mixture: the distances of ddpm_lab/gmm/distances.py
beside their exact-sampler floors, and the mode weights against what the assignment rule gives
exact samples.

Mode weights. Assigning x to argmax_k [log w_k + log N_k(x)] (the Bayes classifier) does not
give w_k even for exact samples, because components overlap. The fractions it does give are
pi_k = P(argmax_j [...] = k) for x ~ p (`assigned_weights`): in 1-D exact, because the boundary
between two components solves log w_j N_j(x) = log w_k N_k(x), a quadratic in x (linear when
s_j = s_k); for D > 1 by Monte Carlo. An exact sampler's assigned fractions c/n with
c ~ Multinomial(n, pi) give the null distribution of the mode error max_k |c_k/n - pi_k|
(`mode_error_draws`); |pi - w| is the rule's own bias, reported separately.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ddpm_lab.gmm.distances import (
    _CHUNK,
    STATISTICS,
    _check_directions,
    _finite_array,
    _positive_int,
    _require_1d_mixture,
    _statistics,
    floor_draws,
    random_directions,
)
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.stats import band, in_band

__all__ = ["STATISTICS", "assigned_weights", "assignment_intervals", "compare_samples", "exact_reference"]
__all__ += ["floor_draws", "mode_error_draws", "mode_weights", "table_row"]


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
      median), inside_band (value <= p95: runtime.stats.in_band), per_seed (s on each seed's n draws: spread
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


def table_row(name: str, sampler: str, S: int, headline: dict, details: dict, nfe: int | None = None) -> dict:
    """One row of a details table (stage sampler_tradeoff, the hybrid diagnostic) from
    compare_samples' (headline, details); nfe: the network evaluations per draw (default S;
    Heun's 2 S - 1). Per registered statistic: its value, <stat>_ratio, <stat>_p05 and <stat>_p95
    (the floor's percentiles over its median: the headline's names, one name per quantity) and
    <stat>_inside (runtime.stats.in_band)."""
    row = {"model": name, "sampler": sampler, "steps": S, "nfe_per_draw": nfe or S}
    for stat in STATISTICS:  # every registered statistic with a floor band (sliced_w1: D > 1)
        if stat in details:
            d = details[stat]
            row.update(
                {
                    stat: d["value"],
                    f"{stat}_ratio": d["ratio"],
                    f"{stat}_p05": d["floor_ratio"]["p05"],
                    f"{stat}_p95": d["floor_ratio"]["p95"],
                    f"{stat}_inside": d["inside_band"],
                }
            )
    band = details["mode"]["mode_band"]
    err = headline["mode_err"]
    row.update(
        {
            "mode_err": err,
            "mode_p05": band["p05"],
            "mode_p95": band["p95"],
            "mode_inside": in_band(band, err),
            "n_pooled": details["n_pooled"],
        }
    )
    return row
