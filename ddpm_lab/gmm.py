"""A Gaussian mixture with diagonal covariances: the target whose every property is exact.

p(x_0) = sum_k w_k N(x_0; m_k, diag(s_k^2)). Under the forward process (Ho et al. 2020,
Eq. 4) the marginal q(x_t) is again a mixture, with means sqrt(abar_t) m_k and variances
abar_t s_k^2 + (1 - abar_t); so its score and the Bayes-optimal noise predictor
eps*(x_t, t) = E[eps | x_t] = -sqrt(1 - abar_t) grad log q(x_t) are closed forms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate, special, stats

from ddpm_lab.config import WEIGHT_SUM_TOL  # the one tolerance of the weights, shared with GMMConfig

# Numerical settings of the exact computations (named here, documented where used).
SPAN_STDS = 12  # integration ranges reach this many standard deviations beyond every mean
GRID_POINTS_PER_STD = 16  # trapezoid grid: points per min(s_k, 1), the narrowest scale of any q(x_t)
GRID_MAX_POINTS = 8001  # cap on the trapezoid grid (odd: every second point is the coarse grid)
MC_DRAWS_PER_T = 4000  # D > 1: Monte-Carlo draws of x_t per timestep
ENTROPY_MC_DRAWS = 400_000  # D > 1: Monte-Carlo draws for the entropy


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
        return GaussianMixture(self.weights, math.sqrt(alpha_bar) * self.means,
                               np.sqrt(alpha_bar * self.stds**2 + 1.0 - alpha_bar))

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
            diff**2 / var_t + torch.log(2 * math.pi * var_t)).sum(-1)
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

    def quadrature_grid(self, max_points: int = GRID_MAX_POINTS) -> torch.Tensor:
        """1-D only: equally spaced points for the trapezoid rule over any q(x_t), t = 0..T.

        Each component of q(x_t) is a Gaussian of std sqrt(abar s_k^2 + 1 - abar) >= min(s_k, 1),
        and the trapezoid rule over the whole line converges geometrically for such integrands
        once the spacing is below their scale; the grid spans 12 stds beyond every mean and uses
        a spacing of min(s_k, 1) / 16 (at most max_points points, an odd number so that every
        second point is a grid of twice the spacing: the error estimate below). Returns (G,) float64."""
        half = float(np.max(np.abs(self.means)) + SPAN_STDS * max(1.0, float(np.max(self.stds))))
        h = min(1.0, float(np.min(self.stds))) / GRID_POINTS_PER_STD
        n = int(min(max_points, 2 * math.ceil(half / h) + 1))
        return torch.linspace(-half, half, n | 1, dtype=torch.float64)

    def marginal_expectation(self, fn, alpha_bars: np.ndarray, rng: np.random.Generator | None = None,
                             n_mc: int = MC_DRAWS_PER_T, chunk_rows: int = 1 << 17) -> tuple[np.ndarray, np.ndarray]:
        """E_{q(x_t)}[fn(x_t, i)] for every alpha_bars[i] = abar_t (T,), with its error.

        fn(x_t: (B, D) float64, i: (B,) long) -> (B,) float64, evaluated in chunks of about
        chunk_rows rows. 1-D: the trapezoid rule over the exact density q(x_t) on
        `quadrature_grid`; the error is |I_h - I_2h|, the change from the rule on every second
        point (for the geometrically converging rule, a generous bound on the error of I_h).
        D > 1: Monte Carlo over n_mc draws of x_t ~ q(x_t) per t from rng; the error is the
        standard error. Returns (values (T,), errors (T,)) float64."""
        alpha_bars = np.asarray(alpha_bars, dtype=np.float64)
        values, errors = np.empty_like(alpha_bars), np.empty_like(alpha_bars)
        if self.dim == 1:
            x = self.quadrature_grid()
            G = x.numel()
            step = max(1, chunk_rows // G)
            for lo in range(0, alpha_bars.size, step):  # `step` timesteps x G points per call
                idx = torch.arange(lo, min(lo + step, alpha_bars.size)).repeat_interleave(G)  # row c*G + g
                ab = torch.from_numpy(alpha_bars)[idx]
                xt = x.repeat(idx.numel() // G)[:, None]  # (c*G, 1)
                f = self.marginal_log_prob(xt, ab).exp() * fn(xt, idx)
                f = f.view(-1, G)
                fine = torch.trapezoid(f, x, dim=1)
                coarse = torch.trapezoid(f[:, ::2], x[::2], dim=1)
                values[lo:lo + step] = fine.numpy()
                errors[lo:lo + step] = (fine - coarse).abs().numpy()
            return values, errors
        if rng is None:
            raise ValueError("an expectation over q(x_t) with D > 1 is a Monte-Carlo estimate: pass rng")
        step = max(1, chunk_rows // n_mc)
        for lo in range(0, alpha_bars.size, step):
            c = min(step, alpha_bars.size - lo)
            idx = torch.arange(lo, lo + c).repeat_interleave(n_mc)  # (c*n_mc,)
            ab = alpha_bars[lo:lo + c].repeat(n_mc)[:, None]  # same order as idx
            x0 = self.sample(c * n_mc, rng)
            xt = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * rng.standard_normal(x0.shape)  # Eq. 4
            f = fn(torch.from_numpy(xt), idx).view(c, n_mc)
            values[lo:lo + c] = f.mean(1).numpy()
            errors[lo:lo + c] = (f.std(1) / math.sqrt(n_mc)).numpy()
        return values, errors

    def eps_mmse(self, alpha_bars: np.ndarray, rng: np.random.Generator | None = None,
                 n_mc: int = MC_DRAWS_PER_T) -> tuple[np.ndarray, np.ndarray]:
        """The least mean squared error of any noise predictor, per timestep:
        mmse_t = E||eps - eps*(x_t)||^2 = D - E||eps*(x_t)||^2 for x_t ~ q(x_t), given abar_t (T,)
        (quadrature in 1-D, Monte Carlo for D > 1: see marginal_expectation).
        Returns (mmse (T,), its error (T,)) float64."""
        ab = torch.from_numpy(np.asarray(alpha_bars, dtype=np.float64))
        second, err = self.marginal_expectation(
            lambda x, i: self.eps_star(x, ab[i]).pow(2).sum(1), alpha_bars, rng, n_mc)
        return self.dim - second, err

    @torch.no_grad()
    def eps_error(self, eps_model, alpha_bars: np.ndarray, rng: np.random.Generator | None = None,
                  n_mc: int = MC_DRAWS_PER_T) -> tuple[np.ndarray, np.ndarray]:
        """e_t = E_{q(x_t)} ||eps_theta(x_t, t) - eps*(x_t, t)||^2 for t = 1..T, alpha_bars = abar_1..abar_T
        (T,). Since eps* = E[eps | x_t], a model's mean squared noise error is mmse_t + e_t, so e_t is
        exactly what the model adds at step t to the Eq. 12 loss and (weighted) to the bound.
        eps_model(x_t (B, D) float32, t (B,) long) -> (B, D). Returns (e (T,), its error (T,))."""
        ab = torch.from_numpy(np.asarray(alpha_bars, dtype=np.float64))

        def sq_err(x, i):
            eps = eps_model(x.float(), i + 1).double()  # row i holds t = i + 1
            return (eps - self.eps_star(x, ab[i])).pow(2).sum(1)

        return self.marginal_expectation(sq_err, alpha_bars, rng, n_mc)


class OracleEps:
    """eps*(x_t, t) of a mixture as an `eps_model(x_t, t)` callable for a given diffusion."""

    def __init__(self, mixture: GaussianMixture, alphas_cumprod: np.ndarray):
        self.mixture = mixture
        self.alphas_cumprod = torch.from_numpy(np.asarray(alphas_cumprod, dtype=np.float64))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mixture.eps_star(x_t, self.alphas_cumprod[t.long()]).to(x_t.dtype)
