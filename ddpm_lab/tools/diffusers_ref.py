"""diffusers' scheduler for each sampler of ddpm_lab.core.sampling, configured to take the same
steps: the reference that benchmarks/bench_samplers.py and the side-by-side tests run against.

diffusers is benchmark-only (requirements-bench.txt): imported here, when a scheduler is built.
Every scheduler gets our betas (trained_betas), epsilon prediction and "trailing" spacing, whose
timesteps are ours minus one (tau_i = round(i T / S) - 1: diffusers counts t from 0):

- ddpm: DDPMScheduler, variance_type "fixed_large" (diffusion.variance beta) or "fixed_small"
  (beta_tilde), no clipping;
- ddim: DDIMScheduler, set_alpha_to_one (abar_0 = 1, as ours), no clipping;
- euler / heun: EulerDiscreteScheduler / HeunDiscreteScheduler; they work on x~ = x_t / sqrt(abar_t)
  and hand the network scale_model_input(x~) = x_t;
- dpmpp_2m: DPMSolverMultistepScheduler, dpmsolver++, order 2, midpoint, second order at every step
  but the first and the last (lower_order_final off), ending at sigma = 0 (final_sigmas_type zero).
"""

from __future__ import annotations

import numpy as np

FIXED = {"beta": "fixed_large", "beta_tilde": "fixed_small"}  # diffusion.variance -> DDPMScheduler's variance_type


def diffusers_scheduler(sampler: str, betas: np.ndarray, steps: int, variance: str = "beta"):
    """diffusers' scheduler for `sampler` on betas_1..T, set to `steps` steps."""
    import diffusers

    common = dict(
        num_train_timesteps=len(betas),
        trained_betas=np.asarray(betas, dtype=np.float64).tolist(),
        prediction_type="epsilon",
        timestep_spacing="trailing",
    )
    if sampler == "ddpm":
        s = diffusers.DDPMScheduler(variance_type=FIXED[variance], clip_sample=False, **common)
    elif sampler == "ddim":
        s = diffusers.DDIMScheduler(set_alpha_to_one=True, clip_sample=False, **common)
    elif sampler == "euler":
        s = diffusers.EulerDiscreteScheduler(**common)
    elif sampler == "heun":
        s = diffusers.HeunDiscreteScheduler(**common)
    elif sampler == "dpmpp_2m":
        s = diffusers.DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++",
            solver_order=2,
            solver_type="midpoint",
            lower_order_final=False,
            final_sigmas_type="zero",
            **common,
        )
    else:
        raise ValueError(f"sampler = {sampler!r}: expected one of ddpm, ddim, euler, heun, dpmpp_2m")
    s.set_timesteps(steps)
    return s
