"""Reverse sampling for any eps_model(x_t, t) and any shape (B, ...): a registry of samplers, each
one loop function plus one `@register` entry (its label, network evaluations, published order and
diffusers counterpart), read by the params schema, the figures, the benchmarks and the docs.

- "ddpm" over all T steps: Algorithm 2 of Ho et al. 2020 (arXiv:2006.11239);
- "ddpm" over S < T steps: ancestral sampling on a respaced subsequence of timesteps, with the
  betas recomputed from abar on the subsequence (Nichol & Dhariwal 2021, Sec. 4);
- "ddim" over S steps with eta in [0, 1] (Song et al. 2021, Eq. 12 and 16): eta = 0 is
  deterministic given x_T; eta = 1 with S = T is Algorithm 2 with sigma_t^2 = beta~_t.
- "euler" and "heun" over S steps: Euler and Heun (second order) on the probability-flow ODE,
  Karras et al. 2022 (EDM), Algorithm 1 without churn, on the VP process written in
  sigma_t = sqrt((1 - abar_t) / abar_t), where x~ = x_t / sqrt(abar_t) obeys dx~/dsigma = eps
  (Euler is then DDIM with eta 0, up to rounding; Heun costs 2 S - 1 network calls);
- "dpmpp_2m" / "dpmpp_3m" over S steps: DPM-Solver++(2M) / (3M), Lu et al. 2022 ("DPM-Solver++",
  Algorithm 2 and its third-order multistep form), on x0_hat = (x_t - sqrt(1 - abar_t) eps) /
  sqrt(abar_t), in lambda_t = log(sqrt(abar_t) / sqrt(1 - abar_t)); each step uses the order its
  history allows (first, then second, then third), and the last step, to sigma = 0, returns x0_hat.

The subsequence is tau_i = round(i T / S), i = 1..S: evenly spaced, ending at T ("trailing"
spacing; for S = T every t); the ODE samplers use the same noise levels and end at sigma = 0
(t = 0). Every sampler draws x_T ~ N(0, I) first, then one N(0, I) tensor per step that adds
noise, in the order of the steps, from the one generator (the ODE samplers add none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import torch

from ddpm_lab.runtime.params import Int, doc, require, schema
from ddpm_lab.core.diffusion import EpsModel, GaussianDiffusion, interpolated_variance
from ddpm_lab.runtime.cli import progress as progress_bar
from ddpm_lab.runtime.seeds import fold_seed


@dataclass
class Chain:
    """What a sampler's loop gets: the diffusion, its config, the noise levels it visits (t: tau,
    T first; levels: tau then 0), the chains' current x (its own: loops may write into it), the
    network eps_at(x, t), the generator of the noise, the steps to iterate (wrapped in a progress
    bar where asked) and keep(i, x), which records the chains before step i; eps_v_at(x, t) -> (eps, v)
    where the model has a learned variance (None otherwise: ddpm reads its sigma from v)."""

    diffusion: GaussianDiffusion
    cfg: SamplerConfig
    t: np.ndarray
    x: torch.Tensor
    eps_at: Callable
    generator: torch.Generator
    steps: Iterable[int]
    keep: Callable[[int, torch.Tensor], None]
    eps_v_at: Callable | None = None

    @property
    def levels(self) -> np.ndarray:
        return np.concatenate([self.t, [0]])

    def ode_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, s, sigma) at the levels: a_t = sqrt(abar_t), s_t = sqrt(1 - abar_t), sigma_t = s_t / a_t
        (sigma = 0 at t = 0)."""
        abar = self.diffusion.np["alphas_cumprod"][self.levels]
        a, s = np.sqrt(abar), np.sqrt(1.0 - abar)
        return a, s, s / a


@dataclass(frozen=True)
class Sampler:
    """One registry entry: the loop `run(chain) -> x_0`, its label (figures, docs), whether it is
    deterministic given x_T (an ODE solver), its order as published (None for the ancestral
    samplers), its citation, its short name (run descriptions), its network evaluations for S
    steps, its diffusers counterpart
    (scheduler class name, keyword arguments, and whether the scheduler works on
    x~ = x_t / sqrt(abar_t) rather than on x_t; ddpm_lab/tools/diffusers_ref.py builds it), and
    describe(cfg, T), where the default "<short>, S of T steps[, N evaluations]" does not fit."""

    name: str
    label: str
    run: Callable[[Chain], torch.Tensor]
    ode: bool
    order: int | None
    cite: str
    short: str = ""
    evals: Callable[[int], int] = field(default=lambda S: S)
    diffusers: tuple[str, dict, bool] | None = None
    describe: Callable[[SamplerConfig, int], str] | None = None


REGISTRY: dict[str, Sampler] = {}


def register(name: str, label: str, **spec):
    """`@register("euler", "Euler on the PF-ODE", ode=True, order=1, cite=...)` on a loop adds it to
    REGISTRY under `name`: the params schema, the figures, the benchmarks and the docs read it."""

    def add(run: Callable[[Chain], torch.Tensor]):
        REGISTRY[name] = Sampler(name, label, run, **spec)
        return run

    return add


def sampler_names() -> tuple[str, ...]:
    """The registered samplers' names, in registration order."""
    return tuple(REGISTRY)


@schema
class SamplerConfig:
    """The reverse sampler and its steps (the sections `sample` and `images_sample`)."""

    sampler: Annotated[
        str,
        doc(
            "a sampler of REGISTRY: ddpm (Algorithm 2; respaced when steps < T), ddim (Song et al. 2021), or "
            "an ODE sampler (docs/samplers.md)",
            choices=REGISTRY,
        ),
    ] = "ddpm"
    steps: Annotated[
        Int,
        doc(
            "S, the noise levels visited, >= 0: 0 or any S >= T is T (every t), as sampler_tradeoff.steps "
            "above T are; S < T: the subsequence round(i T / S) (network calls: the sampler's evals(S), "
            "2 S - 1 for heun)"
        ),
    ] = 0
    eta: Annotated[
        float,
        doc(
            "DDIM's noise scale in [0, 1] (0: deterministic, 1: ancestral, = Algorithm 2 with beta~_t at "
            "steps = T); 0 with every other sampler (ddpm's noise is set by diffusion.variance, the ODE "
            "samplers add none)"
        ),
    ] = 0.0

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
        """Network evaluations per draw: the registry's evals(S) (S; 2 S - 1 for Heun)."""
        return REGISTRY[self.sampler].evals(self.n_steps(T))

    def describe(self, T: int) -> str:
        spec, S = REGISTRY[self.sampler], self.n_steps(T)
        if spec.describe is not None:
            return spec.describe(self, T)
        evals = f", {self.nfe(T)} evaluations" if self.nfe(T) != S else ""
        return f"{spec.short}, {S} of {T} steps{evals}"


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
      or beta~_i = (1 - abar_s) / (1 - abar_t) beta_i, or beta~_i + beta_i^2 / (alpha_i (1 - abar_t)) m_t
      (diffusion.variance; optimal: m_t = mmse_t / D, Bao et al. 2022); the last step (to x_0) adds
      no noise, as in Algorithm 2. log_beta, log_beta_tilde: the ends of a learned variance on the
      step, sigma^2 = exp(v log beta_i + (1 - v) log beta~_i) (Nichol & Dhariwal 2021, Eq. 15, with the
      respaced betas as in their Sec. 4; beta~_1 = 0 replaced by beta~_2 at S = T).
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
            if diffusion.variance == "optimal":  # beta~_i + c_i^2 m_t on the step (Bao et al. 2022, Thm 1)
                sigma2 = sigma2 + beta**2 / (alpha * (1.0 - ab_t)) * diffusion.np["noise_error"][tau]
        a_x = 1.0 / np.sqrt(alpha)
        a_eps = beta / (np.sqrt(1.0 - ab_t) * np.sqrt(alpha))
        sigma = np.sqrt(sigma2)
        sigma[-1] = 0.0  # the last step (to x_0) adds no noise
        if S == T:
            log_beta, log_beta_tilde = diffusion.np["log_beta"][tau], diffusion.np["log_beta_tilde"][tau]
        else:
            bt = (1.0 - ab_s) / (1.0 - ab_t) * beta
            log_beta, log_beta_tilde = np.log(beta), np.log(np.where(bt > 0, bt, beta))  # bt = 0: last step only
        extra = {"log_beta": log_beta, "log_beta_tilde": log_beta_tilde}
    else:
        sigma = cfg.eta * np.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        # x_s = sqrt(ab_s / ab_t) x_t + (sqrt(1 - ab_s - sigma^2) - sqrt(ab_s (1 - ab_t) / ab_t)) eps
        a_x = np.sqrt(ab_s / ab_t)
        a_eps = np.sqrt(ab_s * (1.0 - ab_t) / ab_t) - np.sqrt(np.maximum(1.0 - ab_s - sigma**2, 0.0))
        extra = {}
    return {"t": tau, "a_x": a_x, "a_eps": a_eps, "sigma": sigma, **extra}


def learned_sigma(c: dict, i: int, v: torch.Tensor) -> torch.Tensor:
    """sigma of step i (step_coefficients c of ddpm) for a model's learned-variance output v:
    sqrt(exp(v log beta_i + (1 - v) log beta~_i)) (diffusion.interpolated_variance), in v's dtype."""
    return interpolated_variance(v, c["log_beta"][i], c["log_beta_tilde"][i]).sqrt().to(v.dtype)


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


def eps_v_caller(eps_model, ts, batch: int):
    """eps_v_at(x, t) -> (eps, v) like eps_caller, for a model with a learned variance
    (ddpm_lab.core.targets.EpsFromTarget); None for every other model."""
    if not getattr(eps_model, "learned_variance", False):
        return None
    fast = getattr(eps_model, "sampling_eps_v", None)
    if fast is not None:
        return fast(ts)
    t_batch = torch.empty(batch, dtype=torch.long)
    return lambda x, t: eps_model.eps_v(x, t_batch[: x.shape[0]].fill_(t))


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
    x_T ~ N(0, I), then the registered sampler's loop over the noise levels.

    record: how many of the B chains to keep a trajectory of, at every record_every-th step
    (and at the first t and at t = 0). progress: optional callable wrapping the steps.
    x_T: the chains' start (shape `shape`) instead of a draw: with a deterministic sampler (DDIM
    with eta 0, the ODE samplers) x_0 is then the sampler's map of x_T (ddpm_lab.gmm.propagate).
    Returns x_0: (B, ...) float32, and (ts, path) with ts: (K,) and path: (K, record, ...).
    """
    cfg = sampler or SamplerConfig()
    tau = timestep_subsequence(diffusion.T, cfg.n_steps(diffusion.T))[::-1]  # t at each step, T first
    x = torch.randn(shape, generator=generator) if x_T is None else x_T.clone()
    kept = set(range(0, len(tau), record_every)) if record and record_every else set()
    ts, path = [], []

    def keep(i: int, x: torch.Tensor) -> None:
        if i in kept:
            ts.append(int(tau[i]))
            path.append(x[:record].clone())

    steps = range(len(tau))
    chain = Chain(
        diffusion,
        cfg,
        tau,
        x,
        eps_caller(eps_model, tau, shape[0]),
        generator,
        progress(steps) if progress else steps,
        keep,
        eps_v_caller(eps_model, tau, shape[0]),
    )
    x = REGISTRY[cfg.sampler].run(chain)
    if kept:
        ts.append(0)
        path.append(x[:record].clone())
    return x, (np.array(ts), torch.stack(path).numpy() if path else np.empty((0,)))


def _ancestral(chain: Chain) -> torch.Tensor:
    """ddpm and ddim: x_prev = a_x x_t - a_eps eps_theta(x_t, t) + sigma z (`step_coefficients`),
    one N(0, I) draw per step with sigma > 0, in place (x is the sampler's own). ddpm with a model
    that learned its variance takes sigma from it (learned_sigma), element by element; ddim's sigma
    is set by eta, so ddim ignores a learned variance."""
    c = step_coefficients(chain.diffusion, chain.cfg)
    x, z = chain.x, torch.empty(chain.x.shape)
    learned = chain.eps_v_at is not None and chain.cfg.sampler == "ddpm"
    for i in chain.steps:
        chain.keep(i, x)
        if learned:
            eps, v = chain.eps_v_at(x, int(c["t"][i]))
        else:
            eps = chain.eps_at(x, int(c["t"][i]))
        x.mul_(float(c["a_x"][i])).sub_(eps, alpha=float(c["a_eps"][i]))
        if c["sigma"][i] > 0:
            torch.randn(x.shape, generator=chain.generator, out=z)
            if learned:
                x.add_(z * learned_sigma(c, i, v))
            else:
                x.add_(z, alpha=float(c["sigma"][i]))
    return x


def _describe_ddpm(cfg: SamplerConfig, T: int) -> str:
    S = cfg.n_steps(T)
    return "Algorithm 2 (all T steps)" if S == T else f"respaced DDPM, {S} of {T} steps"


register(
    "ddpm",
    "respaced DDPM (Algorithm 2 at S = T; Nichol & Dhariwal 2021)",
    ode=False,
    order=None,
    cite="Ho et al. 2020, Algorithm 2; Nichol & Dhariwal 2021, Sec. 4",
    diffusers=("DDPMScheduler", {"clip_sample": False}, False),
    describe=_describe_ddpm,
)(_ancestral)
register(
    "ddim",
    "DDIM, eta = 0 (deterministic given x_T; Song et al. 2021)",
    ode=False,
    order=None,
    cite="Song et al. 2021, Eq. 12 and 16",
    diffusers=("DDIMScheduler", {"set_alpha_to_one": True, "clip_sample": False}, False),
    describe=lambda cfg, T: f"DDIM (eta = {cfg.eta:g}), {cfg.n_steps(T)} of {T} steps",
)(_ancestral)


HEUN_MAX_RATIO = 100.0  # sigma / sigma' above which Heun averages in x0_hat instead (_pf_ode)


def _pf_ode(chain: Chain, heun: bool) -> torch.Tensor:
    """Euler (and Heun's correction) on dx~/dsigma = eps, written in x_t = a x~:
    x_t' = (a'/a) x_t + a' (sigma' - sigma) eps (EDM, Algorithm 1, no churn); Heun replaces eps
    by the mean of eps at both ends where sigma' > 0.

    Heun on a step with sigma / sigma' > HEUN_MAX_RATIO: with D = x~ - sigma eps (x0_hat), eps at
    the far end is eps + (D - D') / sigma' up to the change of x~ - D, so the trapezoid amplifies
    the change of D by sigma / sigma' (2e4 / 6.3 on the cosine schedule's first step at S = 10:
    Heun's error 2.75 against Euler's 0.19). There the same two evaluations are averaged in D,
    and the step is the exact one for a constant D, x~' = D_mean + (sigma' / sigma)(x~ - D_mean)
    (the data-prediction form of Lu et al. 2022): error 0.093. Only a huge sigma_T makes such a
    step (the linear schedule's largest ratio is 2.7, at S = 10), so elsewhere Heun is EDM's, and
    diffusers'. No op writes into x or eps (a network may hand back a tensor it keeps)."""
    a, _, sigma = chain.ode_levels()
    x, last = chain.x, len(chain.t) - 1
    for i in chain.steps:
        chain.keep(i, x)
        eps = chain.eps_at(x, int(chain.t[i]))
        ratio, step = float(a[i + 1] / a[i]), float(a[i + 1] * (sigma[i + 1] - sigma[i]))
        if heun and i < last:
            x_next = torch.mul(x, ratio).add_(eps, alpha=step)
            eps_next = chain.eps_at(x_next, int(chain.levels[i + 1]))
            if sigma[i] / sigma[i + 1] > HEUN_MAX_RATIO:
                d_mean = torch.add(x, eps, alpha=-float(a[i] * sigma[i])).div_(float(a[i]))
                d_mean.add_(torch.add(x_next, eps_next, alpha=-float(a[i + 1] * sigma[i + 1])).div_(float(a[i + 1])))
                d_mean.mul_(0.5)  # the mean of x0_hat at both ends
                shrink = float(sigma[i + 1] / sigma[i])
                x = torch.mul(x, float(a[i + 1] / a[i]) * shrink).add_(d_mean, alpha=float(a[i + 1]) * (1 - shrink))
                continue
            eps = torch.add(eps, eps_next).mul_(0.5)  # the mean of eps at both ends
        x = torch.mul(x, ratio).add_(eps, alpha=step)
    return x


@register(
    "euler",
    "Euler on the probability-flow ODE (Karras et al. 2022)",
    short="Euler (PF-ODE)",
    ode=True,
    order=1,
    cite="Karras et al. 2022, Algorithm 1 without churn",
    diffusers=("EulerDiscreteScheduler", {}, True),
)
def euler(chain: Chain) -> torch.Tensor:
    return _pf_ode(chain, heun=False)


@register(
    "heun",
    "Heun on the probability-flow ODE (Karras et al. 2022)",
    short="Heun (PF-ODE)",
    ode=True,
    order=2,
    cite="Karras et al. 2022, Algorithm 1 without churn",
    evals=lambda S: 2 * S - 1,  # two per step, one at the last (to sigma = 0)
    diffusers=("HeunDiscreteScheduler", {}, True),
)
def heun(chain: Chain) -> torch.Tensor:
    return _pf_ode(chain, heun=True)


def _dpmpp(chain: Chain, order: int) -> torch.Tensor:
    """DPM-Solver++ multistep (Lu et al. 2022) up to `order`, on D = x0_hat, h = lambda' - lambda:
      first order:  x_t' = (s'/s) x_t - a' (e^{-h} - 1) D0;
      second order: D = (1 + 1/(2 r0)) D0 - 1/(2 r0) D0_prev, r0 = h_prev / h ("midpoint");
      third order:  x_t' = (s'/s) x_t - a' phi1 D0 + a' (phi1 / h + 1) D1 - a' ((phi1 + h) / h^2 - 1/2) D2,
                    phi1 = e^{-h} - 1, with D1, D2 the divided differences of the last three x0_hat
                    (r0 = h_0 / h, r1 = h_1 / h);
    each step at the highest order its history allows; at t' = 0, x_0 = x0_hat (first order)."""
    a, s, _ = chain.ode_levels()
    x, last = chain.x, len(chain.t) - 1
    hist: list[tuple[torch.Tensor, float]] = []  # (x0_hat, h of the step that followed it), newest last
    for i in chain.steps:
        chain.keep(i, x)
        eps = chain.eps_at(x, int(chain.t[i]))
        x0_hat = torch.add(x, eps, alpha=-float(s[i])).div_(float(a[i]))
        if i == last:  # sigma' = 0: x_0 is x0_hat (first order)
            return x0_hat
        h = float(np.log(a[i + 1] / s[i + 1]) - np.log(a[i] / s[i]))
        if order >= 3 and len(hist) >= 2:
            (m2, h1), (m1, h0) = hist[-2], hist[-1]
            r0, r1, phi1 = h0 / h, h1 / h, float(np.expm1(-h))
            d1_0, d1_1 = (x0_hat - m1) / r0, (m1 - m2) / r1
            d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = (
                torch.mul(x, float(s[i + 1] / s[i]))
                .add_(x0_hat, alpha=-float(a[i + 1] * phi1))
                .add_(d1, alpha=float(a[i + 1] * (phi1 / h + 1.0)))
                .add_(d2, alpha=-float(a[i + 1] * ((phi1 + h) / h**2 - 0.5)))
            )
        else:
            d = x0_hat
            if hist:  # second order from the previous step's x0_hat
                r = hist[-1][1] / h
                d = torch.mul(x0_hat, 1 + 1 / (2 * r)).add_(hist[-1][0], alpha=-1 / (2 * r))
            x = torch.mul(x, float(s[i + 1] / s[i])).add_(d, alpha=-float(a[i + 1] * np.expm1(-h)))
        hist = [*hist[-(order - 1) :], (x0_hat, h)] if order > 1 else []
    return x


_DPMPP = {
    "algorithm_type": "dpmsolver++",
    "solver_type": "midpoint",
    "lower_order_final": False,
    "final_sigmas_type": "zero",
}


@register(
    "dpmpp_2m",
    "DPM-Solver++(2M) (Lu et al. 2022)",
    short="DPM-Solver++(2M)",
    ode=True,
    order=2,
    cite="Lu et al. 2022 (DPM-Solver++), Algorithm 2",
    diffusers=("DPMSolverMultistepScheduler", {**_DPMPP, "solver_order": 2}, False),
)
def dpmpp_2m(chain: Chain) -> torch.Tensor:
    return _dpmpp(chain, order=2)


@register(
    "dpmpp_3m",
    "DPM-Solver++(3M) (Lu et al. 2022)",
    short="DPM-Solver++(3M)",
    ode=True,
    order=3,
    cite="Lu et al. 2022 (DPM-Solver++), the third-order multistep solver",
    diffusers=("DPMSolverMultistepScheduler", {**_DPMPP, "solver_order": 3}, False),
)
def dpmpp_3m(chain: Chain) -> torch.Tensor:
    return _dpmpp(chain, order=3)


SAMPLERS = tuple(REGISTRY)  # every registered sampler, in registration order
ODE_SAMPLERS = tuple(name for name, spec in REGISTRY.items() if spec.ode)  # deterministic given x_T


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
