"""A Gaussian mixture with diagonal covariances: the target whose every property is exact.

p(x_0) = sum_k w_k N(x_0; m_k, diag(s_k^2)). Under the forward process (Ho et al. 2020,
Eq. 4) the marginal q(x_t) is again a mixture, with means sqrt(abar_t) m_k and variances
abar_t s_k^2 + (1 - abar_t); so its score and the Bayes-optimal noise predictor
eps*(x_t, t) = E[eps | x_t] = -sqrt(1 - abar_t) grad log q(x_t) are closed forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Union

import numpy as np
import torch
from pydantic import Field
from scipy import integrate, special, stats

from ddpm_lab.runtime.params import INT_MAX, Seed, doc, require, require_memory, schema

# |sum(weights) - 1| allowed in a mixture; within it the weights are renormalised (GMMConfig and
# GaussianMixture both use this one tolerance, so what the config accepts the mixture accepts).
WEIGHT_SUM_TOL = 1e-6

# Numerical settings of the exact computations (named here, documented where used).
SPAN_STDS = 12  # integration ranges reach this many standard deviations beyond every mean
PANEL_STDS = 1.0  # 1-D quadrature: panel width in units of the narrowest std of q(x_t)'s components there
NOISE_DEGREE = 16  # 1-D quadrature: fn's noise is what a degree-16 polynomial fit on a panel leaves
NOISE_SIGMAS = 8.0  # 1-D quadrature: the noise allowance, in estimated standard deviations (see marginal_expectation)
ROUND_EPS = 64  # 1-D quadrature: float64 rounding allowance, in eps per unit of sum |weight q fn| ...
ROUND_EPS_PER_STD = 16  # ... plus this many eps per |x_t| / (local std): x_t's rounding next to a narrow component
MC_DRAWS_PER_T = 4000  # D > 1: Monte-Carlo draws of x_t per timestep
ENTROPY_MC_DRAWS = 400_000  # D > 1: Monte-Carlo draws for the entropy

# The 21-point Gauss-Kronrod rule on [-1, 1] and its embedded 10-point Gauss rule (QUADPACK's
# qk21): the Kronrod rule integrates polynomials of degree 31 exactly, the Gauss rule degree 19.
_XGK = np.array(
    [
        0.995657163025808080735527280689003,
        0.973906528517171720077964012084452,
        0.930157491355708226001207180059508,
        0.865063366688984510732096688423493,
        0.780817726586416897063717578345042,
        0.679409568299024406234327365114874,
        0.562757134668604683339000099272694,
        0.433395394129247190799265943165784,
        0.294392862701460198131126603103866,
        0.148874338981631210884826001129720,
        0.0,
    ]
)
_WGK = np.array(
    [
        0.011694638867371874278064396062192,
        0.032558162307964727478818972459390,
        0.054755896574351996031381300244580,
        0.075039674810919952767043140916190,
        0.093125454583697605535065465083366,
        0.109387158802297641899210590325805,
        0.123491976262065851077568363611525,
        0.134709217311473325928054001771707,
        0.142775938577060080797094273138717,
        0.147739104901338491374841515972068,
        0.149445554002916905664936468389821,
    ]
)
_WG = np.array(
    [
        0.066671344308688137593568809893332,
        0.149451349150580593145776339657697,
        0.219086362515982043995534934228163,
        0.269266719309996355091226921569469,
        0.295524224714752870173892994651338,
    ]
)  # at _XGK[1], _XGK[3], ..., _XGK[9]
KRONROD_NODES = np.concatenate([-_XGK[:-1], _XGK[::-1]])  # (21,) ascending
KRONROD_WEIGHTS = np.concatenate([_WGK[:-1], _WGK[::-1]])
GAUSS_WEIGHTS = np.zeros(21)  # the Gauss rule as weights on the Kronrod nodes (0 at the other 11)
GAUSS_WEIGHTS[[1, 3, 5, 7, 9]] = _WG
GAUSS_WEIGHTS[[19, 17, 15, 13, 11]] = _WG
# Projection of a panel's 21 values onto what polynomials of degree NOISE_DEGREE cannot fit (the top 4
# of 21 dimensions): of a resolved integrand little is left there, so it measures noise.
_basis = np.linalg.qr(np.polynomial.legendre.legvander(KRONROD_NODES, NOISE_DEGREE))[0]
NOISE_PROJECTION = np.eye(KRONROD_NODES.size) - _basis @ _basis.T
NOISE_DOF = KRONROD_NODES.size - NOISE_DEGREE - 1
del _basis


@dataclass(frozen=True)
class GaussianMixture:
    """weights: (K,), means: (K, D), stds: (K, D); validated on construction."""

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float64)
        m = np.atleast_2d(np.asarray(self.means, dtype=np.float64))
        s = np.atleast_2d(np.asarray(self.stds, dtype=np.float64))
        if m.shape[0] == 1 and w.size > 1:  # 1-D given as flat lists: (1, K) -> (K, 1)
            m, s = m.T, s.T
        if w.ndim != 1 or m.shape != (w.size, m.shape[1]) or s.shape != m.shape:
            raise ValueError(f"mixture shapes disagree: weights {w.shape}, means {m.shape}, stds {s.shape}")
        if np.any(w < 0) or abs(w.sum() - 1.0) > WEIGHT_SUM_TOL:
            raise ValueError(f"weights must be non-negative and sum to 1 (within {WEIGHT_SUM_TOL:g}), got {w.tolist()}")
        if w.sum() != 1.0:
            w = w / w.sum()  # renormalised within the tolerance: sampling and log w_k need a sum of 1
        if np.any(s <= 0):
            raise ValueError(f"stds must be positive, got {s.tolist()}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "stds", s)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.weights.size

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "stds": self.stds.tolist()}

    # -- sampling and density (numpy, float64) --------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws. Returns (n, D) float64."""
        k = rng.choice(self.n_components, size=n, p=self.weights)
        return self.means[k] + self.stds[k] * rng.standard_normal((n, self.dim))

    def component_log_prob(self, x: np.ndarray) -> np.ndarray:
        """log w_k + log N(x; m_k, s_k^2) for x: (n, D). Returns (n, K)."""
        z = (x[:, None, :] - self.means[None]) / self.stds[None]
        lp = -0.5 * (z**2 + math.log(2 * math.pi)) - np.log(self.stds)[None]
        return np.log(self.weights)[None] + lp.sum(-1)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """The most probable component of each row of x: (n, D), argmax_k [log w_k + log N_k(x)]
        (a weightless component never wins). Returns (n,) int."""
        with np.errstate(divide="ignore"):  # log 0 = -inf
            return self.component_log_prob(x).argmax(1)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x) for x: (n, D). Returns (n,)."""
        return special.logsumexp(self.component_log_prob(x), axis=1)

    def marginal_cdf(self, x: np.ndarray, dim: int = 0) -> np.ndarray:
        """CDF of the marginal of coordinate `dim`, at points x: (n,). Returns (n,)."""
        return stats.norm.cdf((np.asarray(x)[:, None] - self.means[:, dim]) / self.stds[:, dim]) @ self.weights

    def entropy(self, rng: np.random.Generator | None = None, n_mc: int = ENTROPY_MC_DRAWS) -> float:
        """Differential entropy H = E[-log p(x_0)] in nats: adaptive quadrature in 1-D,
        a Monte-Carlo mean over n_mc draws of rng for D > 1."""
        if self.dim == 1:
            lo = float(np.min(self.means - SPAN_STDS * self.stds))
            hi = float(np.max(self.means + SPAN_STDS * self.stds))
            pts = sorted(self.means[:, 0].tolist())

            def f(x):
                lp = float(self.log_prob(np.array([[x]]))[0])
                return -math.exp(lp) * lp

            return float(integrate.quad(f, lo, hi, points=pts, limit=500, epsabs=1e-12)[0])
        if rng is None:
            raise ValueError("entropy of a mixture with D > 1 is a Monte-Carlo estimate: pass rng")
        return float(-self.log_prob(self.sample(n_mc, rng)).mean())

    # -- forward marginals and the optimal denoiser ---------------------------------------
    def marginal(self, alpha_bar: float) -> "GaussianMixture":
        """q(x_t) for abar_t = alpha_bar (Eq. 4 applied to each component)."""
        return GaussianMixture(
            self.weights, math.sqrt(alpha_bar) * self.means, np.sqrt(alpha_bar * self.stds**2 + 1.0 - alpha_bar)
        )

    def _marginal_components(self, x_t: torch.Tensor, alpha_bar):
        """For q(x_t) at abar_t = alpha_bar ((B,) or scalar) and x_t: (B, D), float64:
        log w_k + log N(x_t; sqrt(abar) m_k, abar s_k^2 + 1 - abar): (B, K), x_t - mean_k and
        var_k: (B|1, K, D)."""
        x = x_t.double()
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1, 1, 1)  # (B|1, 1, 1)
        mean_t = ab.sqrt() * torch.from_numpy(self.means)[None]  # (B|1, K, D)
        var_t = ab * torch.from_numpy(self.stds**2)[None] + (1.0 - ab)
        diff = x[:, None, :] - mean_t  # (B, K, D)
        log_comp = torch.log(torch.from_numpy(self.weights))[None] - 0.5 * (
            diff**2 / var_t + torch.log(2 * math.pi * var_t)
        ).sum(-1)
        return log_comp, diff, var_t

    def marginal_log_prob(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """log q(x_t) for x_t: (B, D), alpha_bar: (B,) or scalar. Returns (B,) float64."""
        return torch.logsumexp(self._marginal_components(x_t, alpha_bar)[0], dim=1)

    def score(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """grad_x log q(x_t) for x_t: (B, D) and alpha_bar: (B,) or scalar. Returns (B, D) float64."""
        log_comp, diff, var_t = self._marginal_components(x_t, alpha_bar)
        resp = torch.softmax(log_comp, dim=1)  # p(k | x_t): (B, K)
        return (resp[:, :, None] * (-diff / var_t)).sum(1)

    def eps_star(self, x_t: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
        """Bayes-optimal noise prediction E[eps | x_t] = -sqrt(1 - abar_t) grad log q(x_t). Returns (B, D)."""
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1, 1)
        return -torch.sqrt(1.0 - ab) * self.score(x_t, alpha_bar)

    def second_moment(self) -> float:
        """E||x_0||^2 = sum_k w_k (||m_k||^2 + ||s_k||^2)."""
        return float(self.weights @ (self.means**2 + self.stds**2).sum(1))

    def quadrature_panels(self, alpha_bars: np.ndarray) -> dict[str, np.ndarray]:
        """1-D only: the panels of the Gauss-Kronrod quadrature over q(x_t) for each alpha_bars[i] = abar_t.

        By Eq. 4, q(x_t) = sum_k w_k N(x_t; sqrt(abar) m_k, abar s_k^2 + 1 - abar): component k has
        std sd_k = sqrt(abar s_k^2 + 1 - abar) and covers I_k = sqrt(abar) m_k +- SPAN_STDS sd_k. The
        panels tile the union of the I_k (outside it q(x_t) is below every component's 12-std tail);
        on each stretch between consecutive interval ends they are equal, at most PANEL_STDS times
        the smallest sd_k of the components covering the stretch. So each component is resolved on
        its own scale, and so is the structure a narrow component puts into the integrand (eps*
        switches between components over widths of order sd^2 / distance) even inside a wide
        one; the count is at most K (2 SPAN_STDS / PANEL_STDS + 2) per t, whatever the span of the
        means or the narrowest std. Returns (P,) arrays, one entry per panel: "t" (index into
        alpha_bars), "left" (its left end), "half" (half its width; panel p's right end is
        left[p] + 2 half[p], the next panel's left end where they meet) and "scale" (the smallest
        std of the components covering it)."""
        ab = np.asarray(alpha_bars, dtype=np.float64)[:, None]  # (T, 1)
        mean = np.sqrt(ab) * self.means[:, 0][None]  # (T, K)
        sd = np.sqrt(ab * self.stds[:, 0][None] ** 2 + (1.0 - ab))
        lo, hi = mean - SPAN_STDS * sd, mean + SPAN_STDS * sd
        ends = np.sort(np.concatenate([lo, hi], axis=1), axis=1)  # (T, 2K)
        a, b = ends[:, :-1], ends[:, 1:]  # stretches (T, 2K - 1)
        mid = 0.5 * (a + b)
        covered = (lo[:, None, :] <= mid[..., None]) & (mid[..., None] <= hi[:, None, :])  # (T, 2K - 1, K)
        scale = np.where(covered, sd[:, None, :], np.inf).min(-1)
        n = np.zeros(a.shape, dtype=np.int64)
        inside = np.isfinite(scale)
        n[inside] = np.maximum(1, np.ceil((b - a)[inside] / (PANEL_STDS * scale[inside]))).astype(np.int64)
        n = n.ravel()
        width = (b - a).ravel() / np.maximum(n, 1)
        first = np.repeat(np.cumsum(n) - n, n)
        j = np.arange(first.size) - first  # panel number within its stretch
        t = np.repeat(np.broadcast_to(np.arange(a.shape[0])[:, None], a.shape).ravel(), n)
        a_p, width_p = np.repeat(a.ravel(), n), np.repeat(width, n)
        # Ends computed once, so that panels abut exactly (a rounded centre would shift each panel
        # by its own rounding: gaps and overlaps of about eps |x| at every panel end).
        left = a_p + j * width_p
        right = np.where(j + 1 == np.repeat(n, n), np.repeat(b.ravel(), n), a_p + (j + 1) * width_p)
        return {"t": t, "left": left, "half": 0.5 * (right - left), "scale": np.repeat(scale.ravel(), n)}

    def marginal_expectation(
        self,
        fn,
        alpha_bars: np.ndarray,
        rng: np.random.Generator | None = None,
        n_mc: int = MC_DRAWS_PER_T,
        chunk_rows: int = 1 << 17,
    ) -> tuple[np.ndarray, np.ndarray]:
        """E_{q(x_t)}[fn(x_t, i)] for every alpha_bars[i] = abar_t (T,), with its error.

        fn(x_t: (B, D) float64, i: (B,) long) -> (B,) float64, evaluated in chunks of about
        chunk_rows rows (rows of several t may share a chunk).

        1-D: the integral of q(x_t) fn over the panels of `quadrature_panels` (each component of
        q(x_t), Eq. 4, on panels of its own std, refined where a narrower component lies), with the
        21-point Gauss-Kronrod rule K on each panel: at most 21 K (2 SPAN_STDS / PANEL_STDS + 2)
        evaluations of fn per t, whatever the span of the means or the narrowest std. The error is
        the sum of three allowances:
        - discretisation: the sum over panels of |K - G|, the change from the embedded 10-point
          Gauss rule G. K is exact for polynomials of degree 31, G for degree 19; where the
          integrand is resolved, K's error is far below G's, so |K - G| >= |G - I| - |K - I| bounds
          |K - I|, and the sum of the panels' |K - G| (not of their signed changes) bounds the total;
        - noise in fn's values (a float32 model): NOISE_SIGMAS times the standard deviation that K
          gives to independent noise of the variance left in each panel's values by a degree-
          NOISE_DEGREE fit. |K - G| alone misses noise: on a panel, K - G and K's own noise are
          uncorrelated, of equal size. (Rounding noise is partly correlated across nodes, which
          the fit cannot see: on float32 models, the true error reached 4 of these standard
          deviations beyond |K - G|, hence NOISE_SIGMAS = 8.) Where a resolved integrand still has
          structure of degree > NOISE_DEGREE on a panel (eps* switching modes over a fraction of
          a std), this allowance overstates the error, never understates it;
        - float64 rounding: eps (ROUND_EPS + ROUND_EPS_PER_STD |x_t| / std) times K(|q fn|), summed
          over panels (std: the panel's scale); the second term is the rounding of x_t itself,
          which next to a narrow, far-off component (std 0.05 at 3000) moves it by 1e-11 stds.
        Mass beyond SPAN_STDS = 12 stds of every component (< 4e-33 of the whole) is left out, far
        below the rounding allowance.

        D > 1: Monte Carlo over n_mc draws of x_t ~ q(x_t) per t from rng; the error is the
        standard error. Returns (values (T,), errors (T,)) float64."""
        alpha_bars = np.asarray(alpha_bars, dtype=np.float64)
        values, errors = np.empty_like(alpha_bars), np.empty_like(alpha_bars)
        if self.dim == 1:
            panels = {
                k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.quadrature_panels(alpha_bars).items()
            }
            nodes, wk, wg, proj = (
                torch.from_numpy(a) for a in (KRONROD_NODES, KRONROD_WEIGHTS, GAUSS_WEIGHTS, NOISE_PROJECTION)
            )
            n_nodes = nodes.numel()
            ab_all = torch.from_numpy(alpha_bars)
            total = torch.zeros(alpha_bars.size, dtype=torch.float64)
            bound, noise_var, absolute = torch.zeros_like(total), torch.zeros_like(total), torch.zeros_like(total)
            step = max(1, chunk_rows // n_nodes)
            for lo in range(0, panels["t"].numel(), step):  # `step` panels x 21 nodes per call
                t = panels["t"][lo : lo + step]
                left, half = panels["left"][lo : lo + step], panels["half"][lo : lo + step]
                x = (left[:, None] + half[:, None] * (1.0 + nodes[None])).reshape(-1, 1)  # (c*21, 1)
                idx = t.repeat_interleave(n_nodes)
                f = (self.marginal_log_prob(x, ab_all[idx]).exp() * fn(x, idx)).view(-1, n_nodes)
                kron = (f @ wk) * half
                total.index_add_(0, t, kron)
                bound.index_add_(0, t, (kron - (f @ wg) * half).abs())
                noise_var.index_add_(0, t, (f @ proj).pow(2).sum(1) * half**2)
                digits = ROUND_EPS + ROUND_EPS_PER_STD * (left.abs() + 2 * half) / panels["scale"][lo : lo + step]
                absolute.index_add_(0, t, (f.abs() @ wk) * half * digits)
            noise = NOISE_SIGMAS * (noise_var * wk.pow(2).sum() / NOISE_DOF).sqrt()
            values[:] = total.numpy()
            errors[:] = (bound + noise + np.finfo(np.float64).eps * absolute).numpy()
            return values, errors
        if rng is None:
            raise ValueError("an expectation over q(x_t) with D > 1 is a Monte-Carlo estimate: pass rng")
        step = max(1, chunk_rows // n_mc)
        for lo in range(0, alpha_bars.size, step):
            c = min(step, alpha_bars.size - lo)
            idx = torch.arange(lo, lo + c).repeat_interleave(n_mc)  # (c*n_mc,)
            ab = alpha_bars[lo : lo + c].repeat(n_mc)[:, None]  # same order as idx
            x0 = self.sample(c * n_mc, rng)
            xt = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * rng.standard_normal(x0.shape)  # Eq. 4
            f = fn(torch.from_numpy(xt), idx).view(c, n_mc)
            values[lo : lo + c] = f.mean(1).numpy()
            errors[lo : lo + c] = (f.std(1) / math.sqrt(n_mc)).numpy()
        return values, errors

    def eps_mmse(
        self, alpha_bars: np.ndarray, rng: np.random.Generator | None = None, n_mc: int = MC_DRAWS_PER_T
    ) -> tuple[np.ndarray, np.ndarray]:
        """The least mean squared error of any noise predictor, per timestep:
        mmse_t = E||eps - eps*(x_t)||^2 = D - E||eps*(x_t)||^2 for x_t ~ q(x_t), given abar_t (T,)
        (quadrature in 1-D, Monte Carlo for D > 1: see marginal_expectation).
        Returns (mmse (T,), its error (T,)) float64."""
        ab = torch.from_numpy(np.asarray(alpha_bars, dtype=np.float64))
        second, err = self.marginal_expectation(
            lambda x, i: self.eps_star(x, ab[i]).pow(2).sum(1), alpha_bars, rng, n_mc
        )
        return self.dim - second, err

    @torch.no_grad()
    def eps_error(
        self, eps_model, alpha_bars: np.ndarray, rng: np.random.Generator | None = None, n_mc: int = MC_DRAWS_PER_T
    ) -> tuple[np.ndarray, np.ndarray]:
        """e_t = E_{q(x_t)} ||eps_theta(x_t, t) - eps*(x_t, t)||^2 for t = 1..T, alpha_bars = abar_1..abar_T
        (T,). Since eps* = E[eps | x_t], a model's mean squared noise error is mmse_t + e_t, so e_t is
        exactly what the model adds at step t to the Eq. 12 loss and (weighted) to the bound.
        eps_model(x_t (B, D) float32, t (B,) long) -> (B, D). Returns (e (T,), its error (T,)).

        The model sees x_t rounded to float32. For D > 1 the error is taken against eps* at x_t.
        In 1-D, where the quadrature is accurate far beyond float32, the integrand as a whole,
        q(x_t) ||eps_theta - eps*||^2, is taken at the rounded x_t: as a function of x_t it is then a
        staircase of a smooth function, whose steps only move each node by the rounding (which
        the quadrature's noise allowance covers), instead of shifting the model against a smooth
        eps* q, a bias that a symmetric rule, whose paired nodes round alike, does not average out."""
        ab = torch.from_numpy(np.asarray(alpha_bars, dtype=np.float64))

        def sq_err(x, i):
            x32 = x.float()
            eps = eps_model(x32, i + 1).double()  # row i holds t = i + 1
            if self.dim > 1:
                return (eps - self.eps_star(x, ab[i])).pow(2).sum(1)
            x_in = x32.double()  # eps* and q(x_t) at the model's input: marginal_expectation multiplies by q(x)
            ratio = (self.marginal_log_prob(x_in, ab[i]) - self.marginal_log_prob(x, ab[i])).exp()
            return (eps - self.eps_star(x_in, ab[i])).pow(2).sum(1) * ratio

        return self.marginal_expectation(sq_err, alpha_bars, rng, n_mc)


class OracleEps:
    """eps*(x_t, t) of a mixture as an `eps_model(x_t, t)` callable for a given diffusion."""

    def __init__(self, mixture: GaussianMixture, alphas_cumprod: np.ndarray):
        self.mixture = mixture
        self.alphas_cumprod = torch.from_numpy(np.asarray(alphas_cumprod, dtype=np.float64))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mixture.eps_star(x_t, self.alphas_cumprod[t.long()]).to(x_t.dtype)


# |means| <= DATA_SCALE_MAX and 1 / DATA_SCALE_MAX <= stds <= DATA_SCALE_MAX: keeps float64 finite.
DATA_SCALE_MAX = 1e6


@schema
class GMMConfig:
    """Section `gmm`: the mixture p(x_0) = sum_k weights[k] N(means[k], stds[k]^2) (flat lists
    for 1-D, lists of D-lists for D > 1), how many train / held-out draws, and the seed."""

    weights: Annotated[list[float], Field(min_length=1), doc("the mixture weights: non-negative, summing to 1")]
    means: Annotated[
        list[Union[float, list[float]]],
        Field(min_length=1),
        doc(
            "one mean per weight: numbers (1-D) or lists of D numbers (D > 1, e.g. [[x, y], ...]), each "
            f"coordinate in [-{DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]"
        ),
    ]
    stds: Annotated[
        list[Union[float, list[float]]],
        Field(min_length=1),
        doc(
            "one standard deviation per weight (per coordinate for D > 1), the same shape as means, each in "
            f"[{1 / DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]"
        ),
    ]
    n_train: Annotated[
        int,
        Field(ge=2, le=INT_MAX),
        doc("training draws of x_0; their own distance from the truth is a floor for every model trained on them"),
    ]
    n_heldout: Annotated[
        int, Field(ge=2, le=INT_MAX), doc("held-out draws of x_0: compare_dist estimates the bound on them")
    ]
    seed: Annotated[Seed, doc("seed of the draws (never folded with `replicate`: replicates share their data)")]

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float64)
        require(bool(np.all(w >= 0)), "weights", self.weights, "non-negative weights")
        require(
            abs(w.sum() - 1.0) <= WEIGHT_SUM_TOL,
            "weights",
            self.weights,
            f"weights summing to 1 (they sum to {w.sum():.10g})",
        )
        for name in ("means", "stds"):
            v = getattr(self, name)
            require(len(v) == w.size, name, v, f"{w.size} entries, one per weight")
            kinds = {len(x) if isinstance(x, list) else -1 for x in v}  # -1: a number
            require(
                len(kinds) == 1 and 0 not in kinds,
                name,
                v,
                "all entries numbers (1-D) or all non-empty lists of one length (D-dim)",
            )
        require(np.shape(self.means) == np.shape(self.stds), "stds", self.stds, "the same shape as means")
        m = np.asarray(self.means, dtype=np.float64)
        s = np.asarray(self.stds, dtype=np.float64)
        require(bool(np.all(s > 0)), "stds", self.stds, "positive numbers")
        # The exact computations (density, eps*, quadrature) are float64: data of order 1 is the
        # design; these bounds only keep them finite.
        require(
            bool(np.all(np.abs(m) <= DATA_SCALE_MAX)),
            "means",
            self.means,
            f"numbers in [-{DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]",
        )
        require(
            bool(np.all((s >= 1 / DATA_SCALE_MAX) & (s <= DATA_SCALE_MAX))),
            "stds",
            self.stds,
            f"numbers in [{1 / DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]",
        )
        row = self.draw_row_bytes
        require_memory("n_train", self.n_train, lambda n: n * row, "the training draws with their temporaries", " rows")
        require_memory(
            "n_heldout",
            self.n_heldout,
            lambda n: (self.n_train + n) * row,
            f"the held-out draws beside n_train = {self.n_train} training draws",
            " rows",
        )

    @property
    def dim(self) -> int:
        """D: 1 for flat lists, else the length of each entry of means."""
        return len(self.means[0]) if isinstance(self.means[0], list) else 1

    @property
    def draw_row_bytes(self) -> int:
        """Peak bytes per drawn row in generate_gmm: component index and uniform draw (8 + 8),
        and five (D,) float64 arrays (the normals, gathered means and stds, the draw, its bytes)."""
        return 16 + 40 * self.dim
