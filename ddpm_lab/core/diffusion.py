"""The forward process, its posterior, the reverse step and the two training objectives.

Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models", arXiv:2006.11239.

Timesteps follow the paper: t = 1..T. Every coefficient array has length T + 1 and is
indexed by t directly; index 0 stands for x_0 (abar_0 = 1, beta_0 = 0). Coefficients are
computed once, in float64, and gathered through `_extract`. Works for any data shape
(B, ...): the model is any callable `eps_model(x_t, t)` with x_t: (B, ...) and t: (B,) long.
"""

from __future__ import annotations

import math
from typing import Annotated, Callable, ClassVar, Optional

import numpy as np
import torch

from ddpm_lab.core import estimators, targets, weightings
from ddpm_lab.core.estimators import normal_log_prob
from ddpm_lab.core.schedule import SCHEDULE_BETAS, SCHEDULES, make_betas
from ddpm_lab.runtime.params import Count, doc, require, require_memory, schema

VARIANCES = ("beta", "beta_tilde", "optimal")
# Weightings of the noise loss, each a per-t weight c_t of E||eps - eps_theta||^2 (mse_weights), so
# all share the minimiser eps*: the registry of ddpm_lab/core/weightings.py.
WEIGHTINGS = tuple(weightings.REGISTRY)
# How the noise loss draws t for a minibatch, each unbiased for the same expectation: i.i.d. uniform
# on 1..T; stratified (one uniform offset, B evenly spaced points, Kingma et al. 2021, App. I.1);
# importance (t ~ p_t proportional to the weighting's w_t, each term divided by T p_t: Nichol &
# Dhariwal 2021, Sec. 3.3, with the weights as the proposal, so every term carries the same weight).
T_SAMPLINGS = ("uniform", "stratified", "importance")
# The regression target of the noise loss for a row (x_0, eps, t): "sampled", Eq. 12's own eps (or
# the prediction's target from the same x_0 and eps); "stable", the stable target field of Xu et al.
# 2023 ("Stable Target Field for Reduced Variance Score Estimation in Diffusion Models"): the
# posterior mean of that target given x_t, with the minibatch's x_0 as the reference set
# (reference_posterior_mean). Both are minimised, over the training draws, by eps* of their
# empirical distribution, "stable" up to a bias of order 1/B; its variance at large t, where the
# sampled eps is almost independent of x_t, falls with B.
TARGETS = ("sampled", "stable")
# Unbiased estimators of the Eq. 3 bound (loss_bound): the registry of ddpm_lab/core/estimators.py.
ESTIMATORS = tuple(estimators.REGISTRY)
# Units of each objective's value: the bound (Eq. 3 / Eq. 5) in nats; Eq. 12 is the bound less
# its constants; Eq. 14 (L_simple) is a plain squared error.
LOSS_UNITS = {"bound": "nats (bound)"} | {name: w.unit for name, w in weightings.REGISTRY.items()}
MIN_SNR_GAMMA = 5.0  # Hang et al. 2023's default

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HYBRID_LAMBDA = 0.001  # Nichol & Dhariwal 2021, Sec. 3.1: L_hybrid = L_simple + lambda L_vlb


def clipped_beta_tilde(beta_tilde: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """beta~_t (T + 1,) with beta~_1 = 0 replaced by beta~_2 (beta_1 when T = 1) and index 0 by 1."""
    out = beta_tilde.copy()
    out[0] = 1.0
    out[1] = beta_tilde[2] if beta_tilde.size > 2 else betas[1]
    return out


def interpolated_variance(v: torch.Tensor, log_beta, log_beta_tilde) -> torch.Tensor:
    """Nichol & Dhariwal 2021, Eq. 15: exp(v log beta + (1 - v) log beta~), in float64, for a network's
    v (any real: outside [0, 1] it extrapolates) and the ends of its step (numbers or tensors that
    broadcast with v)."""
    v = v.double()
    return torch.exp(v * log_beta + (1.0 - v) * log_beta_tilde)


class GaussianDiffusion:
    """DDPM maths for a fixed schedule beta_1..beta_T and reverse variance sigma_t^2.

    variance: "beta" (sigma_t^2 = beta_t), "beta_tilde" (sigma_t^2 = beta~_t, Eq. 7; at t = 1,
    where beta~_1 = 0, the value beta~_2 is used, as in Nichol & Dhariwal 2021), or "optimal":
    sigma_t^2 = beta~_t + c_t^2 m_t with c_t^2 = beta_t^2 / (alpha_t (1 - abar_t)) and m_t = mmse_t / D
    clipped to [0, 1], the optimal per-t variance of Bao et al. 2022 (Analytic-DPM), Theorem 1, for
    the noise error mmse (T,) (E||eps - eps*(x_t)||^2 summed over the D = dim coordinates; the
    data defines it: ddpm_lab/gmm/variance.py). Respaced samplers recompute it on their steps from m_t.
    """

    def __init__(
        self, betas: np.ndarray, variance: str = "beta", mmse: np.ndarray | None = None, dim: int | None = None
    ):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 1:
            raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError(f"betas must lie in (0, 1), got range [{betas.min()}, {betas.max()}]")
        if variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}: expected one of {', '.join(VARIANCES)}")
        self.T = T = betas.size
        self.variance = variance

        b = np.concatenate([[0.0], betas])  # b[t] = beta_t, t = 0..T
        a = 1.0 - b  # alpha_t
        abar = np.cumprod(a)  # abar_0 = 1
        abar_prev = np.concatenate([[1.0], abar[:-1]])  # abar_{t-1}
        one_minus = np.where(np.arange(T + 1) == 0, 1.0, 1.0 - abar)  # guard t = 0 only

        # Eq. 7: posterior q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I)
        beta_tilde = (1.0 - abar_prev) / one_minus * b
        coef_x0 = np.sqrt(abar_prev) * b / one_minus
        coef_xt = np.sqrt(a) * (1.0 - abar_prev) / one_minus
        m = np.zeros(T + 1)  # m_t = mmse_t / D (variance "optimal" only)
        if variance == "beta":
            sigma2 = b.copy()
        elif variance == "beta_tilde":
            sigma2 = beta_tilde.copy()
            sigma2[1] = beta_tilde[2] if T >= 2 else b[1]
        else:
            if mmse is None or dim is None or np.shape(mmse) != (T,) or not np.all(np.isfinite(mmse)):
                raise ValueError(
                    f"variance optimal needs the noise error per t: mmse of shape ({T},) and dim, got "
                    f"{None if mmse is None else np.shape(mmse)} and {dim} (ddpm_lab.gmm.variance.diffusion_for)"
                )
            m[1:] = np.clip(np.asarray(mmse, dtype=np.float64) / dim, np.finfo(np.float64).tiny, 1.0)
            sigma2 = beta_tilde.copy()
            sigma2[1:] += b[1:] ** 2 / (a[1:] * one_minus[1:]) * m[1:]
        sigma2[0] = 1.0  # unused; keeps logs finite
        # Eq. 12 weight: beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))
        weight = b**2 / (2.0 * sigma2 * a * one_minus)

        self.np = dict(
            betas=b,
            alphas=a,
            alphas_cumprod=abar,
            alphas_cumprod_prev=abar_prev,
            sqrt_alphas=np.sqrt(a),
            sqrt_alphas_cumprod=np.sqrt(abar),
            sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
            posterior_variance=beta_tilde,
            posterior_mean_coef1=coef_x0,
            posterior_mean_coef2=coef_xt,
            sigma2=sigma2,
            # the ends of a learned variance's interpolation (learned_sigma2): log beta_t, and log beta~_t with
            # beta~_1 = 0 replaced by beta~_2 (Nichol & Dhariwal 2021's posterior_log_variance_clipped)
            log_beta=np.log(np.where(np.arange(T + 1) == 0, 1.0, b)),
            log_beta_tilde=np.log(clipped_beta_tilde(beta_tilde, b)),
            eq12_weights=weight,
            noise_error=m,  # m_t = mmse_t / D of variance "optimal" (zeros otherwise)
            # Eq. 11: eps coefficient beta_t / sqrt(1 - abar_t)
            eps_coef=b / np.sqrt(one_minus),
            snr=abar / one_minus,  # SNR_t = abar_t / (1 - abar_t) (index 0: unused)
            # ||eps - eps_hat||^2 = scale_t ||target - target_hat||^2 (ddpm_lab.core.targets)
            **{f"scale_{p}": np.concatenate([[1.0], targets.eps_scale(p, abar[1:])]) for p in targets.PREDICTIONS},
        )
        self._t = {k: torch.from_numpy(v) for k, v in self.np.items()}

    # -- helpers -------------------------------------------------------------------------
    def _extract(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Gather coefficient[t] for t: (B,) and shape it (B, 1, ..., 1) to broadcast with like."""
        out = self._t[name][t.long().cpu()].to(device=like.device, dtype=like.dtype)
        return out.view(-1, *([1] * (like.dim() - 1)))

    def timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n timesteps drawn uniformly from {1..T}. Returns (n,) long."""
        return torch.randint(1, self.T + 1, (n,), generator=generator)

    def stratified_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n timesteps, each uniform on {1..T} but jointly evenly spread: u_i = (u + i / n) mod 1
        for one u ~ U[0, 1), t_i = floor(T u_i) + 1, in a random order (Kingma et al. 2021's
        low-discrepancy sampler). Returns (n,) long."""
        u = (torch.rand((), generator=generator, dtype=torch.float64) + torch.arange(n, dtype=torch.float64) / n) % 1.0
        t = (u * self.T).long().clamp_(max=self.T - 1) + 1
        return t[torch.randperm(n, generator=generator)]

    def importance_timesteps(
        self, n: int, generator: torch.Generator, weighting: str, prediction: str = "eps", gamma: float = MIN_SNR_GAMMA
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n timesteps drawn i.i.d. from p_t = c_t / sum(c) with c_t = mse_weights(weighting, ...), and
        each one's factor c_t / p_t = sum(c), the same for all: sum_t c_t E[err_t] = E_p[sum(c) err_t].
        Returns (t (n,) long, factor (n,) float64)."""
        c = torch.from_numpy(self.mse_weights(weighting, prediction, gamma))
        t = torch.multinomial(c, n, replacement=True, generator=generator) + 1
        return t, torch.full((n,), float(c.sum()), dtype=torch.float64)

    # -- forward process -----------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Eq. 4 reparameterised: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        return (
            self._extract("sqrt_alphas_cumprod", t, x0) * x0
            + self._extract("sqrt_one_minus_alphas_cumprod", t, x0) * noise
        )

    def q_trajectory(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A whole forward trajectory x_0 -> x_1 -> ... -> x_T by Eq. 2, for each x_0: (B, ...).

        Eq. 2 chained gives x_t = sqrt(abar_t) (x_0 + sum_{s<=t} sqrt(beta_s / abar_s) z_s),
        so the recursion is one cumulative sum instead of a loop over t (float64 throughout).
        Returns (B, T + 1, ...) float64, with [:, t] = x_t.
        """
        x0 = x0.double()
        z = torch.randn((x0.shape[0], self.T, *x0.shape[1:]), generator=generator, dtype=torch.float64)
        shape = (1, self.T, *([1] * (x0.dim() - 1)))
        scale = torch.sqrt(self._t["betas"][1:] / self._t["alphas_cumprod"][1:]).view(shape)
        walk = x0.unsqueeze(1) + torch.cumsum(scale * z, dim=1)  # (B, T, ...)
        xs = self._t["sqrt_alphas_cumprod"][1:].view(shape) * walk
        return torch.cat([x0.unsqueeze(1), xs], dim=1)

    def q_posterior_mean_variance(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Eq. 6-7: mean mu~_t(x_t, x_0) and variance beta~_t of q(x_{t-1} | x_t, x_0)."""
        mean = self._extract("posterior_mean_coef1", t, x_t) * x0 + self._extract("posterior_mean_coef2", t, x_t) * x_t
        return mean, self._extract("posterior_variance", t, x_t).expand_as(x_t)

    # -- reverse process -----------------------------------------------------------------
    def p_mean_variance(self, eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor | None = None):
        """Eq. 11: mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t); var sigma_t^2, or
        the learned Sigma_theta of v (learned_sigma2) when the model outputs one."""
        mean = (x_t - self._extract("eps_coef", t, x_t) * eps) / self._extract("sqrt_alphas", t, x_t)
        if v is not None:
            return mean, self.learned_sigma2(v, t)
        return mean, self._extract("sigma2", t, x_t).expand_as(x_t)

    def learned_sigma2(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A learned diagonal variance (Nichol & Dhariwal 2021, Eq. 15): Sigma_theta(x_t, t) =
        exp(v log beta_t + (1 - v) log beta~_t), v the network's second output (any real: v outside
        [0, 1] extrapolates), beta~_1 = 0 replaced by beta~_2 as they do. v: (B, ...), t: (B,); float64."""
        v = v.double()
        return interpolated_variance(v, self._extract("log_beta", t, v), self._extract("log_beta_tilde", t, v))

    def model_terms(
        self, t: torch.Tensor, noise: torch.Tensor, eps: torch.Tensor, sigma2: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 5's term of each row for a Gaussian reverse kernel N(mu_theta, diag(sigma2)) with
        mu~_t - mu_theta = -c_t (noise - eps), c_t^2 = beta_t^2 / (alpha_t (1 - abar_t)) (Eq. 11):
        t >= 2: L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta) = 1/2 sum_d (r - 1 - log r + c_t^2 (noise - eps)_d^2
        / sigma2_d), r = beta~_t / sigma2_d; t = 1: L_0 = -log N(x_0; mu_theta, diag(sigma2)) =
        1/2 sum_d (log(2 pi sigma2_d) + c_1^2 (noise - eps)_d^2 / sigma2_d) (continuous data).
        t: (B,), the others (B, ...), float64. Returns (B,)."""
        return self.terms_of_error(t, (noise - eps) ** 2, sigma2)

    def terms_of_error(self, t: torch.Tensor, sq_err: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
        """model_terms with (noise - eps)_d^2 replaced by sq_err (B, ...): the terms are affine in it, so
        a sq_err of E[(noise - eps)_d^2 | ...] gives the terms' conditional expectation (the exact bound,
        ddpm_lab.gmm.variance; L_hybrid's L_vlb with the stable target). float64; returns (B,)."""
        c2 = self._extract("eps_coef", t, sq_err) ** 2 / self._extract("alphas", t, sq_err)
        fit = c2 * sq_err / sigma2
        r = self._extract("posterior_variance", t, sq_err) / sigma2
        first = (t == 1).to(sq_err.device).view(-1, *([1] * (sq_err.dim() - 1)))
        spread = torch.where(first, torch.log(2 * math.pi * sigma2), r - 1.0 - torch.log(r.clamp_min(1e-300)))
        return 0.5 * (spread + fit).flatten(1).sum(1)

    # -- objectives ----------------------------------------------------------------------
    def loss_eq12(
        self,
        eps_model: EpsModel,
        x0: torch.Tensor,
        generator: torch.Generator,
        weighting: str = "eq12",
        rows: slice | None = None,
        t_sampling: str = "uniform",
        prediction: str = "eps",
        gamma: float = MIN_SNR_GAMMA,
        target: str = "sampled",
        learned_variance: bool = False,
        hybrid_lambda: float = HYBRID_LAMBDA,
        hybrid_vlb: str = "kl",
    ) -> torch.Tensor:
        """Noise-prediction loss, one (t, eps) draw per x_0. Returns (B,), or the losses of
        x0[rows] only: t and eps are drawn for all B rows either way (data-parallel ranks draw
        the global batch and each evaluates its shard, ddpm_lab.runtime.distributed).

        weighting "eq12": T * beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) * ||eps - eps_theta||^2
        (Eq. 12; the factor T makes its mean the sum over t, i.e. nats of the bound).
        weighting "eq14": ||eps - eps_theta||^2 (L_simple, Eq. 14); "min_snr", "target_mse": the
        weights T c_t of mse_weights (gamma: min-SNR's).
        prediction (ddpm_lab.core.targets): what eps_model outputs. The loss is that target's own
        squared error times scale_t, which is the eps-space error, so every prediction has the same
        objective; "eps" is these bytes.
        t_sampling (T_SAMPLINGS): how t is drawn; each gives the same expectation, "uniform" these bytes.
        target (TARGETS): "sampled" these bytes; "stable" regresses on the target's posterior mean
        over all B rows of x0 (reference_posterior_mean), and its value is still the sampled
        target's loss (the difference enters without a gradient), so logged losses and their
        floors keep their meaning while the gradient is the stable field's.
        learned_variance: eps_model also outputs v (ddpm_lab.core.targets.split_variance), trained by
        weighting "hybrid" only: L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, Sec. 3.1),
        here per row ||eps - eps_theta||^2 + hybrid_lambda * T * L_{t-1} (model_terms: the term of Eq. 5
        at the row's t, with the mean's eps_theta detached, so L_vlb trains Sigma_theta only), t drawn
        uniformly (or stratified) as they do for L_hybrid; both parts summed over dimensions. With
        target "stable", L_{t-1} takes the gradient of its posterior mean given x_t over the minibatch's
        x_0 (terms_of_error: (eps_hat - eps_theta)^2 plus the posterior's spread), valued as sampled.
        hybrid_vlb (ddpm_lab.core.weightings.VLB_WEIGHTS): L_{t-1}'s weight u_t over t, "kl" (u_t = 1)
        these bytes.
        """
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
        if t_sampling not in T_SAMPLINGS:
            raise ValueError(f"unknown t_sampling {t_sampling!r}: expected one of {', '.join(T_SAMPLINGS)}")
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
        targets.check_prediction(prediction)
        if (weighting == "hybrid") != learned_variance:
            raise ValueError(
                f"weighting {weighting!r} with learned_variance {learned_variance}: a learned variance is trained by "
                "weighting hybrid, and weighting hybrid needs one"
            )
        if hybrid_vlb not in weightings.VLB_WEIGHTS:
            raise ValueError(f"unknown hybrid_vlb {hybrid_vlb!r}: expected one of {', '.join(weightings.VLB_WEIGHTS)}")
        if weighting == "hybrid" and t_sampling == "importance":
            raise ValueError("weighting hybrid draws t uniform or stratified (Nichol & Dhariwal 2021), not importance")
        B, reference = x0.shape[0], x0
        factor = None
        if t_sampling == "uniform":
            t = self.timesteps(B, generator)
        elif t_sampling == "stratified":
            t = self.stratified_timesteps(B, generator)
        else:
            t, factor = self.importance_timesteps(B, generator, weighting, prediction, gamma)
        t = t.to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        if rows is not None:
            x0, t, noise = x0[rows], t[rows], noise[rows]
            factor = None if factor is None else factor[rows]
        x_t = self.q_sample(x0, t, noise)
        out, v = targets.split_variance(eps_model(x_t, t), learned_variance)
        a, s = self._extract("sqrt_alphas_cumprod", t, x0), self._extract("sqrt_one_minus_alphas_cumprod", t, x0)
        scale = 1.0 if prediction == "eps" else self._extract(f"scale_{prediction}", t, x0)
        # the target's own squared error, times scale_t: the eps-space error
        err = ((targets.target(prediction, x0, noise, a, s) - out) ** 2 * scale).flatten(1).sum(1)
        if target == "stable":
            if v is None:
                x0_hat = self.reference_posterior_mean(x_t, t, reference)
            else:  # and its spread, for L_vlb's posterior mean below
                x0_hat, x0_var = self.reference_posterior_mean(x_t, t, reference, variance=True)
            eps_hat = (x_t - a * x0_hat) / s
            stable = ((targets.target(prediction, x0_hat, eps_hat, a, s) - out) ** 2 * scale).flatten(1).sum(1)
            err = stable + (err - stable).detach()
        if factor is not None:  # sum_t c_t * err_t in expectation, as below
            return factor.to(err) * err
        loss = weightings.weighted(self, weighting, t, err, prediction, gamma)
        if v is not None:  # L_hybrid's L_vlb part: the bound's term at t, Sigma_theta's gradient only
            eps_fixed = targets.to_eps(prediction, out.detach(), x_t, a, s).double()
            sigma2 = self.learned_sigma2(v, t)
            vlb = self.model_terms(t, noise.double(), eps_fixed, sigma2)
            if target == "stable":  # the term's posterior mean given x_t over the minibatch's x_0, valued as sampled:
                # E[(eps - eps_theta)^2 | x_t] = (eps_hat - eps_theta)^2 + (a / s)^2 Var(x_0 | x_t)
                sq_err = (eps_hat.double() - eps_fixed) ** 2 + (a / s).double() ** 2 * x0_var
                stable_vlb = self.terms_of_error(t, sq_err, sigma2)
                vlb = stable_vlb + (vlb - stable_vlb).detach()
            if hybrid_vlb != "kl":
                vlb = vlb * torch.from_numpy(weightings.VLB_WEIGHTS[hybrid_vlb](self))[t.long().cpu()].to(vlb)
            loss = loss + (hybrid_lambda * self.T) * vlb.to(loss)
        return loss

    def reference_posterior_mean(
        self, x_t: torch.Tensor, t: torch.Tensor, reference: torch.Tensor, variance: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """E[x_0 | x_t] under the empirical distribution of `reference` (R, ...): the weights
        softmax_j(-||x_t - sqrt(abar_t) x0_j||^2 / (2 (1 - abar_t))) (q(x_t | x_0), Eq. 4) on the
        reference rows. The term ||x_t||^2, the same for every j, is dropped, and the rest,
        (sqrt(abar_t) / (1 - abar_t)) (x_t . x0_j - sqrt(abar_t) ||x0_j||^2 / 2), is one matmul of
        (B, D + 1) by (D + 1, R): the only (B, R) work is that product, the softmax and the
        weighted sum. In x_t's dtype (softmax subtracts each row's largest logit); returns x_t's shape.
        variance: also Var(x_0 | x_t) per coordinate under the same weights, in float64: (mean, variance)."""
        a = self._extract("sqrt_alphas_cumprod", t, x_t).flatten()[:, None].to(x_t.dtype)
        var = self._extract("sqrt_one_minus_alphas_cumprod", t, x_t).flatten()[:, None].to(x_t.dtype) ** 2
        x, r = x_t.flatten(1), reference.flatten(1).to(x_t.dtype)
        scale = a / var
        left = torch.cat([scale * x, -0.5 * scale * a], dim=1)
        right = torch.cat([r, (r * r).sum(1, keepdim=True)], dim=1)
        logits = left @ right.T
        # Most weights underflow at small t; as subnormal floats they cost the softmax about twice
        # its time, so it runs with subnormals flushed to 0 (this project never enables the flush
        # elsewhere, so it is switched off again after). The weights so lost are below 1e-38.
        flushing = torch.set_flush_denormal(True)
        try:
            w = torch.softmax(logits, dim=1)
        finally:
            if flushing:
                torch.set_flush_denormal(False)
        if variance:  # float64, as E[x0^2] - E[x0]^2 cancels where the weights sit on one row (small t)
            r64 = r.double()
            both = w.double() @ torch.cat([r64, r64 * r64], dim=1)
            mean, second = both[:, : r.shape[1]], both[:, r.shape[1] :]
            return mean.to(x_t.dtype).view_as(x_t), (second - mean * mean).clamp_min(0.0).view_as(x_t)
        return (w @ r).view_as(x_t)

    def loss_eq3(self, eps_model: EpsModel, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Eq. 3 on one sampled forward trajectory per x_0, in nats. Returns (B,).

        L = -log p(x_T) - sum_{t>=1} log[ p_theta(x_{t-1} | x_t) / q(x_t | x_{t-1}) ],
        an unbiased, high-variance estimate of the bound on -log p_theta(x_0). All B*T
        network evaluations of the trajectories are one batched call.
        """
        B, T = x0.shape[0], self.T
        xs = self.q_trajectory(x0, generator)  # (B, T+1, ...) float64
        x_prev = xs[:, :-1].flatten(0, 1)  # (B*T, ...): x_{t-1}
        x_t = xs[:, 1:].flatten(0, 1)  # (B*T, ...): x_t
        t = torch.arange(1, T + 1).repeat(B)  # (B*T,), matches flatten(0, 1) order
        ratios = estimators.log_ratios(self, eps_model, x_prev, x_t, t, x0.dtype)
        log_prior = normal_log_prob(xs[:, T], torch.zeros_like(xs[:, T]), torch.ones_like(xs[:, T]))
        return (-log_prior - ratios.view(B, T).sum(1)).to(x0.dtype)

    # -- estimators of the bound ------------------------------------------------------------
    def _estimator(self, estimator: str) -> estimators.Estimator:
        if estimator not in estimators.REGISTRY:
            raise ValueError(f"unknown estimator {estimator!r}: expected one of {', '.join(ESTIMATORS)}")
        return estimators.REGISTRY[estimator]

    def evaluations(self, estimator: str, terms: int = 0) -> int:
        """Network evaluations per row of loss_bound (the estimator's registry entry)."""
        return self._estimator(estimator).evaluations(self, terms)

    def loss_bound(
        self,
        eps_model: EpsModel,
        x0: torch.Tensor,
        generator: torch.Generator,
        estimator: str = "trajectory",
        terms: int = 0,
        term: str = "kl",
    ) -> torch.Tensor:
        """An unbiased estimate of the bound on -log p_theta(x_0) (Eq. 3 = Eq. 5 in expectation),
        in nats, per row of x0, by `estimator` of ddpm_lab/core/estimators.py (terms and term:
        the subsampled estimator's K and kind of term). Returns (B,)."""
        return self._estimator(estimator).estimate(self, eps_model, x0, generator, terms, term)

    def _walk(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One forward trajectory (Eq. 2) per row, observed at the non-decreasing timesteps t: (B, P)
        (0 allowed: x_0 itself). Eq. 2 chained is x_t = sqrt(abar_t) (x_0 + W_t) with W a Gaussian
        random walk of variance V_t = 1 / abar_t - 1 (sum_{s<=t} beta_s / abar_s), so the trajectory
        at P points needs P independent increments. Returns (B, P, ...) float64."""
        x0d = x0.double()
        V = torch.from_numpy(1.0 / self.np["alphas_cumprod"] - 1.0)  # V_0 = 0
        Vt = V[t]  # (B, P)
        dV = torch.diff(Vt, dim=1, prepend=torch.zeros_like(Vt[:, :1])).clamp_min(0.0)
        shape = (*t.shape, *([1] * (x0.dim() - 1)))
        z = torch.randn((*t.shape, *x0.shape[1:]), generator=generator, dtype=torch.float64)
        walk = x0d.unsqueeze(1) + torch.cumsum(dV.sqrt().view(shape) * z, dim=1)
        return self._t["sqrt_alphas_cumprod"][t].view(shape) * walk

    def _bound_at(
        self,
        eps_model: EpsModel,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        scale: float,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Eq. 5 given x_0 and x_t at the timesteps t: (B, K) (x_t: (B, K, ...)):
        L_T + constants + scale * sum_k w_t ||eps_t - eps_theta(x_t, t)||^2, where
        eps_t = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t) is the noise x_t implies (or `noise`,
        (B*K, ...), the eps x_t was drawn with, when the caller has it: nll_bound). Each KL of
        Eq. 5 (and L_0) is its constant part plus that weighted squared error (nll_bound), so
        scale = T / K with K of the T terms is unbiased for the whole sum. Returns (B,)."""
        B, K = t.shape
        D = x0[0].numel()
        x0d = x0.double()
        tt = t.flatten()
        xt = x_t.flatten(0, 1)
        x0_rep = x0d.repeat_interleave(K, dim=0)
        if noise is None:
            noise = (xt - self._extract("sqrt_alphas_cumprod", tt, xt) * x0_rep) / self._extract(
                "sqrt_one_minus_alphas_cumprod", tt, xt
            )
        eps, v = targets.eps_and_v(eps_model, xt.to(x0.dtype), tt)
        eps = eps.double()
        if v is not None:  # a learned Sigma: each term in full (model_terms), the constants included
            terms = self.model_terms(tt, noise, eps, self.learned_sigma2(v, tt)).view(B, K).sum(1)
            return (self.prior_kl(x0d.flatten(1).pow(2).sum(1), D) + scale * terms).to(x0.dtype)
        sq = ((noise - eps) ** 2).flatten(1).sum(1)
        kl_eps = (self._t["eq12_weights"][tt] * sq).view(B, K).sum(1)
        return (self.prior_kl(x0d.flatten(1).pow(2).sum(1), D) + scale * kl_eps + self.bound_constant(D)).to(x0.dtype)

    def nll_bound(self, eps_model: EpsModel, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The bound of Eq. 3 in its Eq. 5 form, with closed-form Gaussian KLs, in nats. Returns (B,).

        L = L_T + sum_{t=2}^T L_{t-1} + L_0 with, for every t, one x_t ~ q(x_t | x_0):
        L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t))
                = D/2 (r_t - 1 - log r_t) + w_t ||eps - eps_theta||^2,  r_t = beta~_t / sigma_t^2,
        L_0 = -log N(x_0; mu_theta(x_1, 1), sigma_1^2 I) = D/2 log(2 pi sigma_1^2) + w_1 ||eps - eps_theta||^2,
        L_T = KL(q(x_T|x_0) || N(0, I)), w_t the Eq. 12 weight. Same generator state -> same
        (x_t, eps) draws, so two models evaluated with equal seeds give a paired difference.
        """
        B, T = x0.shape[0], self.T
        t = torch.arange(1, T + 1).repeat(B)  # (B*T,)
        x0_rep = x0.double().repeat_interleave(T, dim=0)  # (B*T, ...), row b*T + (t-1)
        noise = torch.randn(x0_rep.shape, generator=generator, dtype=torch.float64)
        x_t = self.q_sample(x0_rep, t, noise)
        return self._bound_at(eps_model, x0, x_t.view(B, T, *x0.shape[1:]), t.view(B, T), 1.0, noise=noise)

    @torch.no_grad()
    def nll_bound_rows(self, eps_model: EpsModel, x0: torch.Tensor, batch: int, seed: int) -> np.ndarray:
        """nll_bound for every row of x0 (N, ...), `batch` rows (each T network evaluations) per call,
        from a generator seeded with `seed`: two models evaluated with the same seed see the same
        (x_t, eps) draws, so their per-row difference is paired. Returns (N,) float64."""
        g = torch.Generator().manual_seed(seed)
        return torch.cat([self.nll_bound(eps_model, xb, g) for xb in x0.split(batch)]).double().numpy()

    def prior_kl(self, x0_sq_norm, D: int):
        """L_T = KL(q(x_T | x_0) || N(0, I)) = D/2 ((1 - abar_T) - 1 - log(1 - abar_T)) + abar_T ||x_0||^2 / 2,
        for ||x_0||^2 given (a tensor per row, or its expectation E||x_0||^2)."""
        abar_T = self.np["alphas_cumprod"][self.T]
        return 0.5 * (D * (1 - abar_T) + abar_T * x0_sq_norm - D - D * math.log(1 - abar_T))

    def bound_constant(self, D: int) -> float:
        """The parts of the Eq. 5 bound that depend on neither the data nor the model:
        sum_{t=2}^T D/2 (r_t - 1 - log r_t) + D/2 log(2 pi sigma_1^2)."""
        r = self.np["posterior_variance"][2:] / self.np["sigma2"][2:]
        return float(0.5 * D * np.sum(r - 1 - np.log(r)) + 0.5 * D * math.log(2 * math.pi * self.np["sigma2"][1]))

    def expected_bound(self, eps_mse: np.ndarray, x0_second_moment: float, D: int) -> float:
        """E over x_0 of the Eq. 5 bound, for a model whose E||eps - eps_theta(x_t, t)||^2 is
        eps_mse[t-1] (T,). With eps_mse = the mixture's eps_mmse this is the oracle's bound,
        the floor of the Eq. 3 objective, in nats; E||x_0||^2 enters only through L_T."""
        return float(self.prior_kl(x0_second_moment, D) + self.bound_constant(D) + self.mse_weights("bound") @ eps_mse)

    def mse_weights(self, objective: str, prediction: str = "eps", gamma: float = MIN_SNR_GAMMA) -> np.ndarray:
        """(T,) weights c_t such that E[objective] = const + sum_t c_t E||eps - eps_theta(x_t, t)||^2:
        the Eq. 12 weights w_t for "eq12" and for the bound ("bound": Eq. 3 / Eq. 5, L_0 included),
        1/T for "eq14" (L_simple with t uniform on 1..T), (1/T) min(SNR_t, gamma) / SNR_t for
        "min_snr" (Hang et al. 2023, Sec. 3.4, eps prediction; SNR_t = abar_t / (1 - abar_t)), and
        (1/T) / scale_t for "target_mse", the unweighted MSE of `prediction`'s target (ddpm_lab.core.targets)."""
        if objective in weightings.REGISTRY or objective == "bound":
            return weightings.REGISTRY["eq12" if objective == "bound" else objective].weights(self, prediction, gamma)
        raise ValueError(f"unknown objective {objective!r}: expected one of {', '.join(WEIGHTINGS)}, bound")

    def expected_loss(
        self,
        objective: str,
        eps_mse: np.ndarray,
        x0_second_moment: float,
        D: int,
        prediction: str = "eps",
        gamma: float = MIN_SNR_GAMMA,
    ) -> float:
        """E[objective] for a model with per-t mean squared noise error eps_mse (T,): a weighting of
        the noise loss (loss_eq12_floor) or "bound" (Eq. 3 and Eq. 5, expected_bound). With the
        mixture's mmse this is the objective's floor."""
        if objective == "bound":
            return self.expected_bound(eps_mse, x0_second_moment, D)
        return self.loss_eq12_floor(eps_mse, objective, prediction, gamma)

    def loss_eq12_floor(
        self, eps_mse: np.ndarray, weighting: str, prediction: str = "eps", gamma: float = MIN_SNR_GAMMA
    ) -> float:
        """E[loss_eq12] for a model with per-t error eps_mse (T,): with the mixture's eps_mmse,
        the lowest value the noise loss can reach (sum_t c_t mse_t; Eq. 12: c = w, Eq. 14: c = 1/T)."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
        return float(self.mse_weights(weighting, prediction, gamma) @ eps_mse)


@schema
class DiffusionConfig:
    """Section `diffusion` (and `images_diffusion`): the forward process beta_1..beta_T (Ho et al.
    2020, Sec. 4) and the reverse variance."""

    T: Annotated[Count, doc("timesteps T of the forward process")]
    schedule: Annotated[
        str,
        doc(
            "the betas (ddpm_lab/core/schedule.py): linear (Ho et al. 2020, from beta_start to beta_end) or "
            "cosine (Nichol & Dhariwal 2021, Eq. 17: its own betas)",
            choices=SCHEDULES,
        ),
    ]
    beta_start: Annotated[
        Optional[float],
        doc("the linear schedule's first beta, in (0, 1) and <= beta_end; null with schedule cosine"),
    ]
    beta_end: Annotated[
        Optional[float],
        doc("the linear schedule's last beta, in (0, 1) and >= beta_start; null with schedule cosine"),
    ]
    variance: Annotated[
        str,
        doc(
            "the reverse variance sigma_t^2: beta (beta_t), beta_tilde (beta~_t, Eq. 7) or optimal (Analytic-DPM's "
            "optimal per-t variance, Bao et al. 2022, Thm 1, computed exactly from the mixture's noise error; GMM "
            "branch only, docs/variance.md)",
            choices=VARIANCES,
        ),
    ]

    # Bytes per timestep of GaussianDiffusion: 18 float64 coefficient arrays of length T + 1
    # plus their temporaries while they are computed.
    STEP_BYTES: ClassVar[int] = 8 * 28

    def __post_init__(self):
        require(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        if SCHEDULE_BETAS[self.schedule]:
            for name in ("beta_start", "beta_end"):
                v = getattr(self, name)
                require(v is not None and 0 < v < 1, name, v, f"a number in (0, 1) (schedule {self.schedule})")
            require(
                self.beta_start <= self.beta_end,
                "beta_end",
                self.beta_end,
                f"a number >= beta_start = {self.beta_start!r} (schedule {self.schedule} increases the noise "
                f"from beta_start to beta_end)",
            )
        else:
            for name in ("beta_start", "beta_end"):
                v = getattr(self, name)
                require(
                    v is None,
                    name,
                    v,
                    f"null with schedule {self.schedule} (it sets its own betas: {name} is for schedule linear only)",
                )
        require(self.variance in VARIANCES, "variance", self.variance, f"one of {', '.join(VARIANCES)}")
        require_memory(
            "T", self.T, lambda t: (t + 1) * self.STEP_BYTES, "the schedule's coefficient arrays", " timesteps"
        )

    def betas(self) -> np.ndarray:
        return make_betas(self.schedule, self.T, self.beta_start, self.beta_end)

    def build(self, mmse: np.ndarray | None = None, dim: int | None = None) -> GaussianDiffusion:
        """The GaussianDiffusion of this config (variance optimal: with the data's mmse (T,) and dim)."""
        return GaussianDiffusion(self.betas(), self.variance, mmse, dim)
