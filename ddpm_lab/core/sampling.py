"""Reverse sampling for any eps_model(x_t, t) and any shape (B, ...), one network call per step:

- "ddpm" over all T steps: Algorithm 2 of Ho et al. 2020 (arXiv:2006.11239);
- "ddpm" over S < T steps: ancestral sampling on a respaced subsequence of timesteps, with the
  betas recomputed from abar on the subsequence (Nichol & Dhariwal 2021, Sec. 4);
- "ddim" over S steps with eta in [0, 1] (Song et al. 2021, Eq. 12 and 16): eta = 0 is
  deterministic given x_T; eta = 1 with S = T is Algorithm 2 with sigma_t^2 = beta~_t.

- "euler" and "heun" over S steps: Euler and Heun (second order) on the probability-flow ODE,
  Karras et al. 2022 (EDM), Algorithm 1 without churn, on the VP process written in
  sigma_t = sqrt((1 - abar_t) / abar_t), where x~ = x_t / sqrt(abar_t) obeys dx~/dsigma = eps
  (Euler is then DDIM with eta 0, up to rounding; Heun costs 2 S - 1 network calls);
- "dpmpp_2m" over S steps: DPM-Solver++(2M), Lu et al. 2022 ("DPM-Solver++", Algorithm 2, the
  multistep second-order solver on x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), in
  lambda_t = log(sqrt(abar_t) / sqrt(1 - abar_t))); first order at its first step and at the
  last, to sigma = 0, whose result is x0_hat itself.

The subsequence is tau_i = round(i T / S), i = 1..S: evenly spaced, ending at T ("trailing"
spacing; for S = T every t); the ODE samplers use the same noise levels and end at sigma = 0
(t = 0). Every sampler draws x_T ~ N(0, I) first, then one N(0, I) tensor per step that adds
noise, in the order of the steps, from the one generator (the ODE samplers add none).
"""

from __future__ import annotations

import numpy as np
import torch

from ddpm_lab.runtime.params import Int, require, schema
from ddpm_lab.core.diffusion import EpsModel, GaussianDiffusion
from ddpm_lab.runtime.cli import progress as progress_bar
from ddpm_lab.runtime.seeds import fold_seed

SAMPLERS = ("ddpm", "ddim", "euler", "heun", "dpmpp_2m")
ODE_SAMPLERS = ("euler", "heun", "dpmpp_2m")  # deterministic given x_T


@schema
class SamplerConfig:
    """sampler: ddpm | ddim | euler | heun | dpmpp_2m; steps: S steps (noise levels), 0 or any
    S >= T for T (every t), as sampler_tradeoff.steps above T are (network calls: S, or 2 S - 1
    for heun); eta: DDIM's noise scale in [0, 1] (ddim only: ddpm's noise is set by
    diffusion.variance)."""

    sampler: str = "ddpm"
    steps: Int = 0
    eta: float = 0.0

    def __post_init__(self):
        require(self.sampler in SAMPLERS, "sampler", self.sampler, f"one of {', '.join(SAMPLERS)}")
        require(self.steps >= 0, "steps", self.steps, "an integer >= 0 (0 or >= T: every timestep)")
        require(0.0 <= self.eta <= 1.0, "eta", self.eta, "a number in [0, 1] (0: deterministic DDIM)")
        require(
            self.sampler == "ddim" or self.eta == 0,
            "eta",
            self.eta,
            f"0 with sampler {self.sampler} (eta is DDIM's noise scale; ddpm's is set by diffusion.variance, "
            "the ODE samplers add none)",
        )

    def n_steps(self, T: int) -> int:
        """S, the network calls per draw of a T-step diffusion: steps, or T where steps is 0 or
        above T (so one params file serves every T: `-S diffusion.T=50` with steps 100 is T)."""
        return min(self.steps or T, T)

    def nfe(self, T: int) -> int:
        """Network evaluations per draw: S, or 2 S - 1 for Heun (two per step, one at the last)."""
        S = self.n_steps(T)
        return 2 * S - 1 if self.sampler == "heun" else S

    def describe(self, T: int) -> str:
        S = self.n_steps(T)
        if self.sampler == "ddpm":
            return "Algorithm 2 (all T steps)" if S == T else f"respaced DDPM, {S} of {T} steps"
        if self.sampler == "ddim":
            return f"DDIM (eta = {self.eta:g}), {S} of {T} steps"
        name = {"euler": "Euler (PF-ODE)", "heun": "Heun (PF-ODE)", "dpmpp_2m": "DPM-Solver++(2M)"}[self.sampler]
        return f"{name}, {S} of {T} steps" + (f", {self.nfe(T)} evaluations" if self.sampler == "heun" else "")


def timestep_subsequence(T: int, S: int) -> np.ndarray:
    """tau_1 < ... < tau_S in {1..T}: tau_i = round(i T / S), so tau_S = T; every t for S = T."""
    if not 1 <= S <= T:
        raise ValueError(f"steps must be in [1, T = {T}], got {S}")
    return np.round(np.arange(1, S + 1) * (T / S)).astype(np.int64)


def step_coefficients(diffusion: GaussianDiffusion, cfg: SamplerConfig) -> dict:
    """Per-step float64 coefficients, index i = 0..S-1 for the step from tau_{S-i} down to
    tau_{S-i-1} (tau_0 = 0): x_prev = a_x x_t - a_eps eps + sigma z (z only where sigma > 0).

    ddpm (Eq. 11 on the subsequence): alpha_i = abar_t / abar_s, beta_i = 1 - alpha_i;
      a_x = 1 / sqrt(alpha_i), a_eps = beta_i / (sqrt(1 - abar_t) sqrt(alpha_i)); sigma^2 = beta_i
      or beta~_i = (1 - abar_s) / (1 - abar_t) beta_i (diffusion.variance; at the last step,
      where beta~ = 0, no noise is added anyway, as in Algorithm 2).
    ddim (Song et al. 2021, Eq. 12): x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),
      x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z, with
      sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s) (Eq. 16).
    """
    T = diffusion.T
    S = cfg.n_steps(T)
    tau = timestep_subsequence(T, S)[::-1]  # t at each step, T first
    prev = np.concatenate([tau[1:], [0]])  # s = the next t (0 after the last step)
    abar = diffusion.np["alphas_cumprod"]  # abar[0] = 1
    ab_t, ab_s = abar[tau], abar[prev]
    if cfg.sampler == "ddpm":
        if S == T:  # Algorithm 2 itself: the diffusion's own betas and sigma_t^2
            alpha, beta = diffusion.np["alphas"][tau], diffusion.np["betas"][tau]
            sigma2 = diffusion.np["sigma2"][tau]
        else:
            alpha = ab_t / ab_s
            beta = 1.0 - alpha
            sigma2 = beta if diffusion.variance == "beta" else (1.0 - ab_s) / (1.0 - ab_t) * beta
        a_x = 1.0 / np.sqrt(alpha)
        a_eps = beta / (np.sqrt(1.0 - ab_t) * np.sqrt(alpha))
        sigma = np.sqrt(sigma2)
        sigma[-1] = 0.0  # the last step (to x_0) adds no noise
    else:
        sigma = cfg.eta * np.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        # x_s = sqrt(ab_s / ab_t) x_t + (sqrt(1 - ab_s - sigma^2) - sqrt(ab_s (1 - ab_t) / ab_t)) eps
        a_x = np.sqrt(ab_s / ab_t)
        a_eps = np.sqrt(ab_s * (1.0 - ab_t) / ab_t) - np.sqrt(np.maximum(1.0 - ab_s - sigma**2, 0.0))
    return {"t": tau, "a_x": a_x, "a_eps": a_eps, "sigma": sigma}


def eps_caller(eps_model: EpsModel, ts, batch: int):
    """eps_at(x, t) for the timesteps ts a sampler visits, on batches of `batch` rows: the
    network's own `sampling_eps(ts)` when it has one (a cheaper call for fixed-t batches,
    EpsMLP), else eps_model(x, t) on a reused batch of t."""
    fast = getattr(eps_model, "sampling_eps", None)
    if fast is not None:
        return fast(ts)
    t_batch = torch.empty(batch, dtype=torch.long)

    def eps_at(x: torch.Tensor, t: int) -> torch.Tensor:
        return eps_model(x, t_batch.fill_(t))

    return eps_at


@torch.inference_mode()
def sample(
    diffusion: GaussianDiffusion,
    eps_model: EpsModel,
    shape: tuple,
    generator: torch.Generator,
    record: int = 0,
    record_every: int = 0,
    progress=None,
    sampler: SamplerConfig | None = None,
    x_T: torch.Tensor | None = None,
):
    """Draw x_0 for `shape` (B, ...) with `sampler` (default: Algorithm 2 over all T steps):
    x_T ~ N(0, I); at each step x_prev = a_x x_t - a_eps eps_theta(x_t, t) + sigma z.

    record: how many of the B chains to keep a trajectory of, at every record_every-th step
    (and at the first t and at t = 0). progress: optional callable wrapping the steps.
    x_T: the chains' start (shape `shape`) instead of a draw: with a deterministic sampler (DDIM
    with eta 0, the ODE samplers) x_0 is then the sampler's map of x_T (ddpm_lab.gmm.propagate).
    Returns x_0: (B, ...) float32, and (ts, path) with ts: (K,) and path: (K, record, ...).
    """
    cfg = sampler or SamplerConfig()
    if cfg.sampler in ODE_SAMPLERS:
        return _sample_ode(diffusion, eps_model, shape, generator, record, record_every, progress, cfg, x_T)
    c = step_coefficients(diffusion, cfg)
    x = torch.randn(shape, generator=generator) if x_T is None else x_T.clone()
    z = torch.empty(shape)
    eps_at = eps_caller(eps_model, c["t"], shape[0])
    n_steps = len(c["t"])
    keep = set(range(0, n_steps, record_every)) if record and record_every else set()
    ts, path = [], []
    steps = range(n_steps)
    for i in progress(steps) if progress else steps:
        t = int(c["t"][i])
        if i in keep:
            ts.append(t)
            path.append(x[:record].clone())
        eps = eps_at(x, t)
        x.mul_(float(c["a_x"][i])).sub_(eps, alpha=float(c["a_eps"][i]))  # in place: x is this sampler's own
        if c["sigma"][i] > 0:
            x.add_(torch.randn(shape, generator=generator, out=z), alpha=float(c["sigma"][i]))
    if keep:
        ts.append(0)
        path.append(x[:record].clone())
    return x, (np.array(ts), torch.stack(path).numpy() if path else np.empty((0,)))


def _sample_ode(diffusion, eps_model, shape, generator, record, record_every, progress, cfg: SamplerConfig, x_T=None):
    """The ODE samplers of `sample` (euler, heun, dpmpp_2m), on the noise levels of the trailing
    subsequence tau (T first) and then t = 0. With a_t = sqrt(abar_t), s_t = sqrt(1 - abar_t),
    sigma_t = s_t / a_t and x~ = x_t / a_t (dx~/dsigma = eps, the probability-flow ODE):
      euler:    x~' = x~ + (sigma' - sigma) eps(x_t, t)                       (EDM, Alg. 1, no churn)
      heun:     the Euler x~' corrected with the mean of eps at both ends, where sigma' > 0;
      dpmpp_2m: x_t' = (s'/s) x_t - a' (e^{-h} - 1) D, h = lambda' - lambda, D = x0_hat at t, or
                (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_prev (r = h_prev / h) after the first step;
                at t' = 0, x_0 = x0_hat.
    x_T ~ N(0, I) is the only draw (none when x_T is given)."""
    T = diffusion.T
    tau = timestep_subsequence(T, cfg.n_steps(T))[::-1]
    levels = np.concatenate([tau, [0]])  # t at each noise level, ending at x_0
    abar = diffusion.np["alphas_cumprod"][levels]
    a, s = np.sqrt(abar), np.sqrt(1.0 - abar)
    sigma = s / a  # 0 at t = 0
    eps_at = eps_caller(eps_model, tau, shape[0])
    x = torch.randn(shape, generator=generator) if x_T is None else x_T.clone()
    n_steps = len(tau)
    keep = set(range(0, n_steps, record_every)) if record and record_every else set()
    ts, path = [], []
    x0_prev, h_prev = None, None
    steps = range(n_steps)
    for i in progress(steps) if progress else steps:
        t, last = int(tau[i]), i == n_steps - 1
        if i in keep:
            ts.append(t)
            path.append(x[:record].clone())
        eps = eps_at(x, t)
        if cfg.sampler == "dpmpp_2m":
            x0_hat = torch.add(x, eps, alpha=-float(s[i])).div_(float(a[i]))
            if last:  # sigma' = 0: x_0 is x0_hat (first order)
                x = x0_hat
                continue
            h = float(np.log(a[i + 1] / s[i + 1]) - np.log(a[i] / s[i]))
            d = x0_hat
            if x0_prev is not None:  # second order from the previous step's x0_hat
                r = h_prev / h
                d = torch.mul(x0_hat, 1 + 1 / (2 * r)).add_(x0_prev, alpha=-1 / (2 * r))
            x = torch.mul(x, float(s[i + 1] / s[i])).add_(d, alpha=-float(a[i + 1] * np.expm1(-h)))
            x0_prev, h_prev = x0_hat, h
            continue
        # In x_t = a x~: x_t' = (a'/a) x_t + a' (sigma' - sigma) eps (Euler in x~); no op writes
        # into x or eps (a network may hand back a tensor it keeps).
        ratio, step = float(a[i + 1] / a[i]), float(a[i + 1] * (sigma[i + 1] - sigma[i]))
        if cfg.sampler == "heun" and not last:
            eps_next = eps_at(torch.mul(x, ratio).add_(eps, alpha=step), int(levels[i + 1]))
            eps = torch.add(eps, eps_next).mul_(0.5)  # the mean of eps at both ends
        x = torch.mul(x, ratio).add_(eps, alpha=step)
    if keep:
        ts.append(0)
        path.append(x[:record].clone())
    return x, (np.array(ts), torch.stack(path).numpy() if path else np.empty((0,)))


def sample_seeds(
    diffusion: GaussianDiffusion,
    eps_model: EpsModel,
    shape: tuple,
    seeds,
    replicate: int = 0,
    sampler: SamplerConfig | None = None,
    record: int = 0,
    record_every: int = 0,
    desc: str | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """`sample` once per seed, each from its own generator seeded with fold_seed(seed, replicate)
    (runtime.seeds: replicate 0 is the seed itself), in the order of seeds. Returns the draws of
    every seed stacked, x_0: (len(seeds), *shape) float32, and (ts, path) of the first seed, the
    only one whose trajectories are recorded (record, record_every as in `sample`). desc: the
    label of a progress bar per seed ("<desc> seed <seed>"), none if None."""
    x0s, kept = [], None
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(fold_seed(seed, replicate))
        x0, recorded = sample(
            diffusion,
            eps_model,
            shape,
            g,
            record=record if i == 0 else 0,
            record_every=record_every,
            progress=progress_bar(f"{desc} seed {seed}") if desc else None,
            sampler=sampler,
        )
        x0s.append(x0.numpy())
        if i == 0:
            kept = recorded
    return np.stack(x0s), kept
