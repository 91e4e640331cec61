"""The distribution a reverse sampler outputs, computed on a grid instead of sampled (1-D).

Every sampler of ddpm_lab.core.sampling is a chain of steps x_prev = a_x x_t - a_eps eps(x_t, t) +
sigma z. A step with sigma > 0 is a Gaussian kernel around the mean mu(x_t) = a_x x_t - a_eps eps:

    p(x_prev) = int N(x_prev; mu(x_t), sigma^2) p(x_t) dx_t,        p(x_T) = N(0, 1),       (1)

(Algorithm 2 of Ho et al. 2020 at every t >= 2; respaced DDPM and DDIM with eta > 0 the same way on
their own coefficients). A step with sigma = 0 (Algorithm 2's last, x_0 = mu(x_1, 1); every step of
DDIM with eta = 0 and of the ODE samplers Euler, Heun and DPM-Solver++(2M)) is a deterministic map m,
whose output density follows by change of variables:

    p(y) = sum over x with m(x) = y of p(x) / |m'(x)|.                                     (2)

(1) is evaluated on a uniform grid x_1 < ... < x_N of spacing h by the trapezoid rule, with the
network (or eps*) evaluated once per step on the N nodes. The integrand is smooth on the scale
sigma of the kernel (and of the density), and for a Gaussian of width sigma the trapezoid rule's
error falls as exp(-2 pi^2 sigma^2 / h^2) (Trefethen & Weideman 2014, "The exponentially convergent
trapezoidal rule", SIAM Rev. 56, Thm. 5.1): `Grid` takes h at most the smallest kernel width and a
quarter of the narrowest mixture std, so both limits are resolved whatever the mixture and schedule.
The trailing deterministic steps are run on the nodes themselves (the sampler's own code, from
x_T = the nodes for the ODE samplers), and (2) is applied to the mapped nodes: where the map keeps
the nodes' order (the exact flow does, in 1-D) the output CDF is the input CDF carried along and
the density is p(x) / m'(x) with m' by second-order differences; where a discretised step folds the
line (mapped nodes out of order), the mass of each segment [x_i, x_i+1] is spread uniformly over its
image and summed, which is (2) for the piecewise-linear map, and the folds are counted.

The grid error is what halving the grid changes: every measure is computed at spacing h and at 2h
and err = |value(h) - value(2h)|, which bounds the error at h when it shrinks at least linearly in h;
the mass that leaves the grid's span is reported too (it is far below every err on valid mixtures).

The measures against the exact mixture q: KL(q || p) = int q log(q / p), W1 = int |F_p - F_q|,
KS = sup |F_p - F_q|, and the mode weights: the p-mass of each interval the Bayes assignment rule
gives component k (ddpm_lab.gmm.metrics.assignment_intervals), judged against the same rule's
exact fractions pi_k under q, as the sampled mode error is. No file I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr

from ddpm_lab.core.diffusion import EpsModel, GaussianDiffusion
from ddpm_lab.core.sampling import (
    ODE_SAMPLERS,
    SamplerConfig,
    eps_caller,
    eps_v_caller,
    learned_sigma,
    sample,
    step_coefficients,
)
from ddpm_lab.gmm.artifacts import EXACT_CURVE_COLUMNS
from ddpm_lab.gmm.metrics import assigned_weights, assignment_intervals
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps

SPAN_STDS = 10.0  # the grid reaches this many stds beyond every component of q(x_0) and of N(0, 1)
NODES_PER_SIGMA = 1.5  # h <= (smallest kernel sigma) / 1.5: the trapezoid error of (1) ~ exp(-2 pi^2 1.5^2) ~ 1e-19
NODES_PER_STD = 4.0  # h <= (narrowest mixture std) / 4: its density resolved by 4 nodes per std
TAIL_STDS = 37.0  # ... and continue, ever sparser, to where N(0, 1)'s density underflows float64
TAIL_RATE = 2.0
MAP_REFINE = 128  # a deterministic chain's nodes of x_T: 128 times finer than that (the map stretches them)
KERNEL_STDS = 9.0  # each kernel of (1) is cut at 9 sigma (tail mass 2e-19)
TAYLOR_TOL = 1e-15  # (1)'s kernels as Taylor series in the sub-node offset: terms kept down to this
METHOD = (
    "the reverse chain propagated on a uniform grid (trapezoid rule for each Gaussian step, change of variables for "
    "the deterministic ones); err = |value at spacing h - value at 2h|"
)
MEASURES = ("kl", "w1", "ks", "mode_err")  # what `measures` returns, each with its grid error


@dataclass(frozen=True)
class Grid:
    """Uniform nodes lo, lo + h, ..., hi (1-D); with tails, continued on both sides out to
    +-TAIL_STDS, uniform with spacing h in u where x = edge +- (exp(TAIL_RATE u) - 1) / TAIL_RATE
    beyond the edge (a deterministic chain's nodes of x_T ~ N(0, 1): its far tails, where a narrow
    output meets the target's tails, cost few nodes; `coarser` halves them everywhere)."""

    lo: float
    hi: float
    h: float
    tails: bool = False

    @property
    def nodes(self) -> np.ndarray:
        n = int(math.floor((self.hi - self.lo) / self.h)) + 1
        x = self.lo + self.h * np.arange(n)
        if not self.tails:
            return x
        reach = TAIL_STDS - min(abs(self.lo), abs(self.hi))
        u = self.h * np.arange(1, int(math.log1p(TAIL_RATE * reach) / TAIL_RATE / self.h) + 2)
        ext = np.expm1(TAIL_RATE * u) / TAIL_RATE
        return np.concatenate([x[0] - ext[::-1], x, x[-1] + ext])

    def coarser(self) -> "Grid":
        return Grid(self.lo, self.hi, 2.0 * self.h, self.tails)


@dataclass(frozen=True)
class Propagated:
    """A sampler's output distribution on ascending nodes x: density p and CDF F (both normalised to
    the mass that stayed on the grid), mass_lost (1 - that mass), folds (segments the deterministic
    steps turned around: 0 where the map kept its order)."""

    x: np.ndarray
    p: np.ndarray
    F: np.ndarray
    mass_lost: float
    folds: int


def learns_variance(eps_model, sampler: SamplerConfig) -> bool:
    """Whether the sampler's kernels take their sigma from the model (ddpm with a learned variance)."""
    return sampler.sampler == "ddpm" and bool(getattr(eps_model, "learned_variance", False))


def kernel_sigmas(
    diffusion: GaussianDiffusion, sampler: SamplerConfig, decoder: bool = False, eps_model=None, span=None
) -> np.ndarray:
    """The positive sigmas of the sampler's Gaussian-kernel steps (empty for a deterministic chain);
    with decoder, the bound's sigma_1 of the last step too (`propagate`). A model with a learned
    variance: the least sigma of each step over nodes spanning `span` (lo, hi), at the fixed steps'
    spacing (its v is smooth in x_t)."""
    if sampler.sampler in ODE_SAMPLERS:
        return np.empty(0)
    c = step_coefficients(diffusion, sampler)
    s = c["sigma"]
    if learns_variance(eps_model, sampler):
        x = np.arange(span[0], span[1], max(float(s[s > 0].min()), 1e-3) / NODES_PER_SIGMA)
        eps_v = _Float64Eps(eps_model, x.size).sampling_eps_v(c["t"])
        xt = torch.from_numpy(x)[:, None]
        with torch.inference_mode():
            least = [
                float(learned_sigma(c, i, eps_v(xt, int(c["t"][i]))[1]).min()) if s[i] > 0 else 0.0
                for i in range(len(s))
            ]
            if decoder:
                least.append(float(learned_sigma(c, len(s) - 1, eps_v(xt, 1)[1]).min()))
        s = np.asarray(least)
    elif decoder:
        s = np.append(s, math.sqrt(diffusion.np["sigma2"][1]))
    return s[s > 0]


def grid_for(
    mixture: GaussianMixture,
    diffusion: GaussianDiffusion,
    sampler: SamplerConfig,
    decoder: bool = False,
    eps_model=None,
) -> Grid:
    """The grid of `propagate`, sized to the mixture and the sampler, never to the defaults.

    A chain with Gaussian kernels: h = min(sigma_min / NODES_PER_SIGMA, s_min / NODES_PER_STD)
    (sigma_min: the smallest kernel's, s_min: the narrowest component's std), spanning SPAN_STDS
    stds beyond every component of q(x_0) and of p(x_T) = N(0, 1). A deterministic chain (DDIM with
    eta 0, the ODE samplers): nodes of x_T on [-SPAN_STDS, SPAN_STDS], MAP_REFINE times finer than
    s_min / NODES_PER_STD, since the map stretches them where the output density is low. A model
    with a learned variance (eps_model): sigma_min is the least its v gives over the span."""
    if mixture.dim != 1:
        raise ValueError(f"mixture: grid propagation is 1-D, got D = {mixture.dim}")
    m, s = mixture.means[:, 0], mixture.stds[:, 0]
    lo = min(-SPAN_STDS, float(np.min(m - SPAN_STDS * s)))
    hi = max(SPAN_STDS, float(np.max(m + SPAN_STDS * s)))
    sig = kernel_sigmas(diffusion, sampler, decoder, eps_model, (lo, hi))
    h = float(s.min()) / NODES_PER_STD
    if not sig.size:
        return Grid(-SPAN_STDS, SPAN_STDS, h / MAP_REFINE, tails=True)
    h = min(h, float(sig.min()) / NODES_PER_SIGMA)
    return Grid(lo, hi, h)


class _Float64Eps:
    """eps_model on float64 x_t, returned as float64, with the fixed-t fast path of
    ddpm_lab.core.sampling.eps_caller: the samplers' arithmetic stays float64 on the grid. A network
    is evaluated in its float32 (its rounding, ~1e-7, is part of the model); the exact eps* in float64."""

    def __init__(self, eps_model: EpsModel, batch: int):
        self.eps_model, self.batch = eps_model, batch
        self.dtype = torch.float64 if isinstance(eps_model, OracleEps) else torch.float32

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.eps_model(x.to(self.dtype), t).double()

    def sampling_eps(self, ts):
        inner = eps_caller(self.eps_model, ts, self.batch)
        return lambda x, t: inner(x.to(self.dtype), t).double()

    def sampling_eps_v(self, ts):
        """(eps, v) at the nodes, float64, for a model with a learned variance."""
        inner = eps_v_caller(self.eps_model, ts, self.batch)

        def eps_v(x, t):
            eps, v = inner(x.to(self.dtype), t)
            return eps.double(), v.double()

        return eps_v


def _kernel_step_nodes(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray, lo: float, h: float) -> np.ndarray:
    """(1) by the trapezoid rule with a sigma of each source node (a learned variance):
    p'(x_j) = h sum_i p_i N(x_j; mu_i, sigma_i^2), each kernel cut at KERNEL_STDS sigma_i, summed
    directly over each kernel's band of nodes (the convolution of _kernel_step needs one sigma)."""
    n = p.size
    out = np.zeros(n)
    src = np.flatnonzero(p > 0)
    if not src.size:
        return out
    band = int(math.ceil(KERNEL_STDS * float(sigma[src].max()) / h))
    k = np.arange(-band, band + 1)
    rows = max(1, (1 << 21) // k.size)  # sources per chunk: about 2M kernel values at once
    for a in range(0, src.size, rows):
        i = src[a : a + rows]
        j = np.rint((mu[i] - lo) / h).astype(np.int64)[:, None] + k
        z = (lo + j * h - mu[i, None]) / sigma[i, None]
        w = (h * p[i] / (math.sqrt(2 * math.pi) * sigma[i]))[:, None] * np.exp(-0.5 * z * z)
        ok = (j >= 0) & (j < n) & (np.abs(z) <= KERNEL_STDS)
        out += np.bincount(j[ok], weights=w[ok], minlength=n)
    return out


def _kernel_step(p: np.ndarray, mu: np.ndarray, lo: float, sigma: float, h: float) -> np.ndarray:
    """(1) by the trapezoid rule on the uniform nodes x_j = lo + j h (j < len(p)):
    p'(x_j) = h sum_i p_i N(x_j; mu_i, sigma^2), each kernel cut at KERNEL_STDS sigma.

    Computed as a sum of convolutions on the grid, exactly equal to that sum up to the truncation
    TAYLOR_TOL: with mu_i = x_{c_i} + r_i sigma (c_i the nearest node, |r_i| <= h / (2 sigma)),
    Taylor's theorem in the offset gives N(x_j; mu_i, sigma^2) = sum_m r_i^m / m! He_m(z) phi(z) / sigma,
    z = (x_j - x_{c_i}) / sigma (He_m the probabilists' Hermite polynomials, d^m phi / dz^m =
    (-1)^m He_m phi), so p' = sum_m K_m * A_m, with A_m[c] = sum_{c_i = c} h p_i r_i^m / m! deposited
    on the nodes and K_m[k] = He_m(k h / sigma) phi(k h / sigma) / sigma; the terms fall as
    |r|^m / sqrt(m!) (Cramer's bound on He_m phi) and stop below TAYLOR_TOL. The convolutions are
    direct sums (np.convolve; an FFT's rounding, ~1e-16 of the largest density, would swamp the
    tails that KL(q || p) reads). Mass landing beyond the nodes is dropped (and so counted lost)."""
    n = p.size
    band = int(math.ceil(KERNEL_STDS * sigma / h))
    u = (mu - lo) / h
    c = np.rint(u)
    r = (u - c) * (h / sigma)
    idx = c.astype(np.int64) + band  # deposits on the padded nodes -band .. n - 1 + band
    ok = (idx >= 0) & (idx < n + 2 * band) & (p > 0)
    idx, r, mass = idx[ok], r[ok], h * p[ok]
    z = np.arange(-band, band + 1) * (h / sigma)
    phi = np.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * sigma)
    total = np.zeros(n + 4 * band)
    r_max = h / (2 * sigma)
    he_prev, he = np.zeros_like(z), np.ones_like(z)  # He_{-1}, He_0
    coef = mass  # h p_i r_i^m / m!
    m = 0
    while True:
        total += np.convolve(np.bincount(idx, weights=coef, minlength=n + 2 * band), he * phi)
        m += 1
        if r_max**m / math.sqrt(math.factorial(m)) < TAYLOR_TOL:
            break
        he_prev, he = he, z * he - (m - 1) * he_prev  # He_m = z He_{m-1} - (m - 1) He_{m-2}
        coef = coef * r / m
    return np.maximum(total[2 * band : 2 * band + n], 0.0)  # index (c + band) + (k + band) = j + 2 band


def _on_nodes(x: np.ndarray, p: np.ndarray) -> Propagated:
    """A density p on the uniform nodes x as a Propagated (trapezoid CDF, normalised)."""
    h = x[1] - x[0]
    F = np.concatenate([[0.0], np.cumsum(0.5 * h * (p[:-1] + p[1:]))])
    total = float(F[-1])
    return Propagated(x, p / total, F / total, 1.0 - total, 0)


def _pushforward(x: np.ndarray, p: np.ndarray, y: np.ndarray) -> Propagated:
    """(2): the law of m(X) for X with density p on the ascending nodes x, given y = m(x)."""
    seg_mass = 0.5 * np.diff(x) * (p[:-1] + p[1:])  # trapezoid mass of each segment [x_i, x_i+1]
    total = float(seg_mass.sum())
    dy = np.diff(y)
    keep = seg_mass > 0
    folds = int(np.count_nonzero(keep & (dy <= 0)))
    if folds == 0:
        # Order kept: F carried along the nodes, p(y) = p(x) / m'(x) (second-order differences).
        first, last = np.flatnonzero(keep)[[0, -1]]
        xs, ps, ys = x[first : last + 2], p[first : last + 2], y[first : last + 2]
        F = np.concatenate([[0.0], np.cumsum(seg_mass[first : last + 1])]) / total
        return Propagated(ys, ps / np.gradient(ys, xs) / total, F, 1.0 - total, 0)
    # Folded: each segment's mass uniform on its image [lo_i, hi_i], summed on a uniform grid as
    # fine as the nodes' median image spacing.
    lo, hi = np.minimum(y[:-1], y[1:])[keep], np.maximum(y[:-1], y[1:])[keep]
    mass = seg_mass[keep]
    out = np.linspace(lo.min(), hi.max(), max(2, int(np.ceil((hi.max() - lo.min()) / np.median(hi - lo))) + 1))
    width = np.maximum(hi - lo, np.finfo(float).tiny)
    F = np.zeros(out.size)
    dens = np.zeros(out.size)
    for a in range(0, out.size, 256):  # chunks of output nodes: (256, segments) temporaries
        z = out[a : a + 256, None]
        F[a : a + 256] = (np.clip((z - lo) / width, 0.0, 1.0) * mass).sum(1)
        dens[a : a + 256] = (((z >= lo) & (z < hi)) * (mass / width)).sum(1)
    return Propagated(out, dens / total, F / total, 1.0 - total, folds)


@torch.inference_mode()
def propagate(
    diffusion: GaussianDiffusion,
    eps_model: EpsModel,
    sampler: SamplerConfig,
    grid: Grid,
    decoder: bool = False,
    progress=None,
) -> dict[str, Propagated]:
    """The output distribution of `sampler` with eps_model, from x_T ~ N(0, 1), on `grid`.

    Returns {"output": what the sampler returns (Algorithm 2: x_0 = mu_theta(x_1, 1), no noise at
    the last step)}, and with decoder (ddpm over all T steps only) also {"decoder": the bound's
    p_theta(x_0), whose last step is the Gaussian decoder N(x_0; mu_theta(x_1, 1), sigma_1^2) of
    L_0 (Eq. 5), for which KL(q || p_theta) <= E_q[L] - H(q)}, from the same chain down to x_1.
    progress: optional callable wrapping the steps."""
    T = diffusion.T
    if decoder and not (sampler.sampler == "ddpm" and sampler.n_steps(T) == T):
        raise ValueError(
            f"decoder: the bound's p_theta(x_0) is Algorithm 2's (ddpm over all T steps), not {sampler.describe(T)}"
        )
    xs = grid.nodes
    x = torch.from_numpy(xs)
    p = np.exp(-0.5 * xs * xs) / math.sqrt(2 * math.pi)  # p(x_T) = N(0, 1)
    eps64 = _Float64Eps(eps_model, xs.size)
    if sampler.sampler in ODE_SAMPLERS or not np.any(step_coefficients(diffusion, sampler)["sigma"] > 0):
        # one deterministic map of x_T: the sampler's own code
        y, _ = sample(diffusion, eps64, (xs.size, 1), None, sampler=sampler, x_T=x[:, None], progress=progress)
        return {"output": _pushforward(xs, p, y[:, 0].numpy())}
    c = step_coefficients(diffusion, sampler)
    sigma = c["sigma"]
    n_steps = len(c["t"])
    n_kernel = int(np.argmax(sigma <= 0)) if np.any(sigma <= 0) else n_steps
    if np.any(sigma[n_kernel:] > 0):
        raise ValueError("propagate: a noisy step after a deterministic one (expected kernels, then maps)")
    learned = learns_variance(eps_model, sampler)
    eps_at = eps64.sampling_eps_v(c["t"]) if learned else eps64.sampling_eps(c["t"])

    def mean_sigma(i: int, source: torch.Tensor):  # mu = a_x x_t - a_eps eps(x_t, t); a learned sigma at x_t
        out = eps_at(source[:, None], int(c["t"][i]))
        eps, v = out if learned else (out, None)
        mu = float(c["a_x"][i]) * source - float(c["a_eps"][i]) * eps[:, 0]
        return mu, None if v is None else learned_sigma(c, i, v[:, 0]).numpy()

    def kernel(i: int, fixed_sigma: float) -> np.ndarray:
        mu, sig = mean_sigma(i, x)
        if sig is None:
            return _kernel_step(p, mu.numpy(), grid.lo, fixed_sigma, grid.h)
        return _kernel_step_nodes(p, mu.numpy(), sig, grid.lo, grid.h)

    steps = range(n_steps)
    y = x
    for i in progress(steps) if progress else steps:
        if i < n_kernel:
            p = kernel(i, float(sigma[i]))
        else:
            if decoder and i == n_steps - 1:
                out_decoder = _on_nodes(xs, kernel(i, math.sqrt(diffusion.np["sigma2"][1])))
            y = mean_sigma(i, y)[0]
    out = {"output": _on_nodes(xs, p) if n_kernel == n_steps else _pushforward(xs, p, y.numpy())}
    if decoder:
        out["decoder"] = out_decoder
    return out


def _measures_once(prop: Propagated, mixture: GaussianMixture, pi: np.ndarray, intervals) -> dict:
    m, s, w = mixture.means[:, 0], mixture.stds[:, 0], mixture.weights
    y = prop.x
    z = (y[:, None] - m) / s
    q = (np.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * s)) @ w
    Q = ndtr(z) @ w
    live = (q > 0) & (prop.p > 0)
    integrand = np.zeros_like(y)
    integrand[live] = q[live] * np.log(q[live] / prop.p[live])
    edges, winners = intervals
    F_edges = np.interp(edges, y, prop.F, left=0.0, right=1.0)
    mode_weights = np.bincount(winners, weights=np.diff(F_edges), minlength=w.size)
    # q's mass beyond the nodes or where p underflowed to 0: KL's integrand there is not resolved
    unresolved = Q[0] + (1.0 - Q[-1]) + np.trapezoid(np.where(prop.p > 0, 0.0, q), y)
    return {
        "kl_unresolved_q_mass": float(unresolved),
        "kl": float(np.trapezoid(integrand, y)),
        "w1": float(np.trapezoid(np.abs(prop.F - Q), y)),
        "ks": float(np.max(np.abs(prop.F - Q))),
        "mode_err": float(np.max(np.abs(mode_weights - pi))),
        "mode_weights": mode_weights,
    }


def measures(
    diffusion: GaussianDiffusion,
    eps_model: EpsModel,
    sampler: SamplerConfig,
    mixture: GaussianMixture,
    decoder: bool = False,
    progress=None,
) -> tuple[dict[str, dict], dict[str, Propagated]]:
    """The exact distances from the mixture q of each distribution `propagate` gives ("output", and
    "decoder" with decoder), each with its grid error: {kl, kl_err, w1, w1_err, ks, ks_err, mode_err,
    mode_err_err, mode_weights, mode_weights_err, assigned_weights (the rule's exact fractions under
    q), kl_unresolved_q_mass (q's mass where p is not resolved, beyond the nodes or underflowed:
    KL leaves it out), mass_lost, folds, grid: {h, nodes, lo, hi}}. err = |value at h - value at 2h| (module
    docstring). Returns (that dict, {which: the Propagated on the fine grid})."""
    grid = grid_for(mixture, diffusion, sampler, decoder, eps_model)
    pi, _ = assigned_weights(mixture)
    intervals = assignment_intervals(mixture)
    fine = propagate(diffusion, eps_model, sampler, grid, decoder, progress)
    coarse = propagate(diffusion, eps_model, sampler, grid.coarser(), decoder)
    out = {}
    for which, prop in fine.items():
        a, b = _measures_once(prop, mixture, pi, intervals), _measures_once(coarse[which], mixture, pi, intervals)
        doc = {}
        for k in MEASURES:
            doc[k] = a[k]
            doc[f"{k}_err"] = abs(a[k] - b[k])
        doc["mode_weights"] = a["mode_weights"].tolist()
        doc["mode_weights_err"] = np.abs(a["mode_weights"] - b["mode_weights"]).tolist()
        doc["assigned_weights"] = pi.tolist()
        doc["kl_unresolved_q_mass"] = a["kl_unresolved_q_mass"]
        doc["mass_lost"] = max(prop.mass_lost, 0.0)
        doc["folds"] = prop.folds
        doc["grid"] = {"h": grid.h, "nodes": int(grid.nodes.size), "lo": grid.lo, "hi": grid.hi}
        out[which] = doc
    return out, fine


def cdf_at(prop: Propagated, x: np.ndarray) -> np.ndarray:
    """The propagated CDF at x (linear between the nodes, 0 and 1 beyond them)."""
    return np.interp(x, prop.x, prop.F, left=0.0, right=1.0)


def curve(prop: Propagated | None, mixture: GaussianMixture, n: int = 1000) -> pd.DataFrame:
    """The propagated density and CDF on n points spanning the mixture (6 stds beyond every
    component), linear between the nodes: the figures' curve (columns EXACT_CURVE_COLUMNS; no
    rows when prop is None, for D > 1)."""
    if prop is None:
        return pd.DataFrame({c: np.empty(0) for c in EXACT_CURVE_COLUMNS})
    m, s = mixture.means[:, 0], mixture.stds[:, 0]
    x = np.linspace(np.min(m - 6 * s), np.max(m + 6 * s), n)
    return pd.DataFrame({"x": x, "density": np.interp(x, prop.x, prop.p, left=0.0, right=0.0), "cdf": cdf_at(prop, x)})
