"""diffusers' scheduler for each sampler of ddpm_lab.core.sampling, configured to take the same
steps: the reference that benchmarks/bench_samplers.py and the side-by-side tests run against.

diffusers is benchmark-only (requirements-bench.txt): imported here, when a scheduler is built.
Each sampler's registry entry (`Sampler.diffusers` in ddpm_lab/core/sampling.py) names its
scheduler and settings; every scheduler gets our betas (trained_betas), epsilon prediction and
"trailing" spacing, whose timesteps are ours minus one (tau_i = round(i T / S) - 1: diffusers counts
t from 0). DDPMScheduler's variance_type follows diffusion.variance: "fixed_large" (beta) or
"fixed_small" (beta_tilde). Euler and Heun work on x~ = x_t / sqrt(abar_t) and hand the network
scale_model_input(x~) = x_t; DPM-Solver++ runs with lower_order_final off and final_sigmas_type
"zero": the highest order its history allows at every step but the last, which returns x0_hat.
"""

from __future__ import annotations

import numpy as np

from ddpm_lab.core.sampling import REGISTRY

FIXED = {"beta": "fixed_large", "beta_tilde": "fixed_small"}  # diffusion.variance -> DDPMScheduler's variance_type


def counterparts() -> tuple[str, ...]:
    """The samplers with a diffusers counterpart, in registry order."""
    return tuple(name for name, spec in REGISTRY.items() if spec.diffusers)


def works_on_x_tilde(sampler: str) -> bool:
    """Whether `sampler`'s scheduler steps x~ = x_t / sqrt(abar_t) (Euler, Heun) rather than x_t."""
    return REGISTRY[sampler].diffusers[2]


def diffusers_scheduler(sampler: str, betas: np.ndarray, steps: int, variance: str = "beta"):
    """diffusers' scheduler for `sampler` on betas_1..T, set to `steps` steps."""
    import diffusers

    if sampler not in counterparts():
        raise ValueError(
            f"sampler = {sampler!r}: expected one of {', '.join(counterparts())} (those with a diffusers counterpart)"
        )
    cls, kwargs, _ = REGISTRY[sampler].diffusers
    if cls == "DDPMScheduler" and variance not in FIXED:
        raise ValueError(
            f"variance = {variance!r}: DDPMScheduler has no counterpart; expected one of {', '.join(FIXED)}"
        )
    if cls == "DDPMScheduler":
        kwargs = {**kwargs, "variance_type": FIXED[variance]}
    s = getattr(diffusers, cls)(
        num_train_timesteps=len(betas),
        trained_betas=np.asarray(betas, dtype=np.float64).tolist(),
        prediction_type="epsilon",
        timestep_spacing="trailing",
        **kwargs,
    )
    s.set_timesteps(steps)
    return s
