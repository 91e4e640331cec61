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
        if np.any(w < 0) or abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights must be non-negative and sum to 1, got {w.tolist()}")
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

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x) for x: (n, D). Returns (n,)."""
        return special.logsumexp(self.component_log_prob(x), axis=1)

    def responsibilities(self, x: np.ndarray) -> np.ndarray:
        """p(k | x) for x: (n, D). Returns (n, K)."""
        lp = self.component_log_prob(x)
        return np.exp(lp - special.logsumexp(lp, axis=1, keepdims=True))

    def marginal_cdf(self, x: np.ndarray, dim: int = 0) -> np.ndarray:
        """CDF of the marginal of coordinate `dim`, at points x: (n,). Returns (n,)."""
        return stats.norm.cdf((np.asarray(x)[:, None] - self.means[:, dim]) / self.stds[:, dim]) @ self.weights

    def entropy(self, rng: np.random.Generator | None = None, n_mc: int = 400_000) -> float:
        """Differential entropy H = E[-log p(x_0)] in nats: adaptive quadrature in 1-D,
        a Monte-Carlo mean over n_mc draws of rng for D > 1."""
        if self.dim == 1:
            lo = float(np.min(self.means - 12 * self.stds))
            hi = float(np.max(self.means + 12 * self.stds))
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

    def eps_mmse(self, alpha_bars: np.ndarray, rng: np.random.Generator | None = None,
                 n_mc: int = 4000, n_grid: int = 2001) -> np.ndarray:
        """The least mean squared error of any noise predictor, per timestep:
        E||eps - eps*(x_t)||^2 = D - E||eps*(x_t)||^2 for x_t ~ q(x_t), given abar_t (T,).
        1-D: quadrature on a grid of n_grid points; D > 1: Monte Carlo, n_mc draws per t.
        Returns (T,) float64."""
        alpha_bars = np.asarray(alpha_bars, dtype=np.float64)
        out = np.empty_like(alpha_bars)
        if self.dim == 1:
            half = float(np.max(np.abs(self.means)) + 12 * max(1.0, float(np.max(self.stds))))
            x = torch.linspace(-half, half, n_grid, dtype=torch.float64)
            for lo in range(0, alpha_bars.size, 64):  # 64 timesteps x n_grid points at a time
                ab = torch.from_numpy(alpha_bars[lo:lo + 64]).repeat_interleave(n_grid)  # (c*G,)
                xt = x.repeat(ab.numel() // n_grid)[:, None]  # (c*G, 1), row i*G + g
                dens = self.marginal_log_prob(xt, ab).exp().view(-1, n_grid)
                e2 = self.eps_star(xt, ab).view(-1, n_grid) ** 2
                out[lo:lo + 64] = 1.0 - torch.trapezoid(dens * e2, x, dim=1).numpy()
            return out
        if rng is None:
            raise ValueError("eps_mmse of a mixture with D > 1 is a Monte-Carlo estimate: pass rng")
        for i, ab in enumerate(alpha_bars):
            x0 = self.sample(n_mc, rng)
            xt = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * rng.standard_normal(x0.shape)
            e = self.eps_star(torch.from_numpy(xt), torch.tensor(ab)).numpy()
            out[i] = self.dim - float((e**2).sum(1).mean())
        return out


class OracleEps:
    """eps*(x_t, t) of a mixture as an `eps_model(x_t, t)` callable for a given diffusion."""

    def __init__(self, mixture: GaussianMixture, alphas_cumprod: np.ndarray):
        self.mixture = mixture
        self.alphas_cumprod = torch.from_numpy(np.asarray(alphas_cumprod, dtype=np.float64))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mixture.eps_star(x_t, self.alphas_cumprod[t.long()]).to(x_t.dtype)
