"""The ODE samplers (euler, heun, dpmpp_2m in ddpm_lab.core.sampling) against diffusers'
EulerDiscreteScheduler, HeunDiscreteScheduler and DPMSolverMultistepScheduler on the same betas,
the same noise levels (trailing spacing) and the same x_T, over 10,000 draws; their network calls;
Euler against DDIM with eta 0; and the diffusers quirks the comparison steps around, pinned.

diffusers' timesteps are t' = t - 1 (ours 1..T); its ODE schedulers work in x~ = x_t / sqrt(abar_t),
so the model sees scale_model_input(x~) = x_t; DPMSolverMultistepScheduler works on x_t. diffusers is benchmark-only (requirements-bench.txt,
installed by scripts/test.sh): the tests skip without it, except in CI (env CI set), where they fail.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import ODE_SAMPLERS, SamplerConfig, sample
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.tools.diffusers_ref import diffusers_scheduler

if os.environ.get("CI"):
    import diffusers  # noqa: F401  CI installs requirements-bench.txt (scripts/test.sh): missing means failed
else:
    pytest.importorskip("diffusers", reason="benchmark-only dependency: pip install -r requirements-bench.txt")
from diffusers import EulerDiscreteScheduler, HeunDiscreteScheduler  # noqa: E402

T = 50
BETAS = make_betas("linear", T, 2e-3, 0.4)  # Ho et al.'s schedule rescaled to T = 50: abar_T ~ 5e-5
DIFF = GaussianDiffusion(BETAS)
ABAR = torch.from_numpy(np.cumprod(1 - BETAS)).float()
N = 10_000
TOL = 1e-3  # float32, diffusers' schedule in float32 against ours in float64


def eps_model():
    """eps* of x_0 ~ N(0.5, 0.5^2) plus 0.1 x a small seeded EpsMLP: O(1) samples, a curved field."""
    mlp = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8, data_dim=1), 0).eval()

    def eps(x, t):
        ab = ABAR[t - 1].view(-1, 1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * 0.5) / (ab * 0.25 + 1 - ab) + 0.1 * mlp(x, t)

    return eps


@torch.inference_mode()
def diffusers_sample(sampler: str, steps: int, eps, x_T: torch.Tensor) -> tuple[torch.Tensor, int]:
    """diffusers' loop, from x~_T = x_T / sqrt(abar_T) for Euler and Heun (not init_noise_sigma: see
    the quirk below) and from x_T for DPM-Solver++, which works on x_t itself (init_noise_sigma 1).
    Returns x_0 and the network calls."""
    s = diffusers_scheduler(sampler, BETAS, steps)
    x = x_T if sampler == "dpmpp_2m" else x_T / float(ABAR[-1].sqrt())
    calls = 0
    for t in s.timesteps:
        inp = s.scale_model_input(x, t)
        out = eps(inp, torch.full((x.shape[0],), int(t) + 1, dtype=torch.long))
        calls += 1
        x = s.step(out, t, x).prev_sample
    return x, calls


@pytest.mark.parametrize("steps", [5, 10, 25])
@pytest.mark.parametrize("sampler", ODE_SAMPLERS)
def test_ode_samplers_agree_with_diffusers(sampler, steps):
    eps = eps_model()
    calls = []

    def counted(x, t):
        calls.append(int(t[0]))
        return eps(x, t)

    cfg = SamplerConfig(sampler=sampler, steps=steps)
    ours, _ = sample(DIFF, counted, (N, 1), torch.Generator().manual_seed(0), sampler=cfg)
    x_T = torch.randn((N, 1), generator=torch.Generator().manual_seed(0))  # the only draw of an ODE sampler
    theirs, their_calls = diffusers_sample(sampler, steps, eps, x_T)
    assert len(calls) == their_calls == cfg.nfe(T) == (2 * steps - 1 if sampler == "heun" else steps)
    err = (ours - theirs).abs().max().item()
    assert err <= TOL, f"{sampler}, {steps} steps: max |ours - diffusers| = {err:.2e}"
    assert 0.2 < ours.mean().item() < 0.8  # O(1) samples near the Gaussian's mean: a real comparison


def test_euler_is_ddim_with_eta_0():
    eps = eps_model()
    for steps in (5, 20):
        g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
        euler, _ = sample(DIFF, eps, (500, 1), g(), sampler=SamplerConfig("euler", steps))
        ddim, _ = sample(DIFF, eps, (500, 1), g(), sampler=SamplerConfig("ddim", steps))
        torch.testing.assert_close(euler, ddim, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler", ODE_SAMPLERS)
def test_ode_samplers_are_deterministic_given_x_T_and_record_trajectories(sampler):
    eps = eps_model()
    cfg = SamplerConfig(sampler=sampler, steps=8)
    a, (ts, path) = sample(DIFF, eps, (30, 1), torch.Generator().manual_seed(1), record=4, record_every=3, sampler=cfg)
    g = torch.Generator().manual_seed(1)
    b, _ = sample(DIFF, eps, (30, 1), g, sampler=cfg)
    after_x_T = torch.Generator().manual_seed(1)
    torch.randn((30, 1), generator=after_x_T)
    assert torch.equal(a, b) and torch.equal(g.get_state(), after_x_T.get_state())  # x_T is the only draw
    assert ts[0] == T and ts[-1] == 0 and path.shape == (len(ts), 4, 1)
    np.testing.assert_array_equal(path[-1], a[:4].numpy())
    with pytest.raises(ValueError, match=rf"^eta = 0.5: expected 0 with sampler {sampler}"):
        SamplerConfig(sampler=sampler, eta=0.5)


def test_diffusers_quirk_init_noise_sigma_is_sigma_max_with_trailing_spacing():
    """EulerDiscreteScheduler and HeunDiscreteScheduler scale x_T by sigma_max with "trailing" (and
    "linspace") spacing, not by sqrt(sigma_max^2 + 1), the scale of x~_T = x_T / sqrt(abar_T) when
    x_T ~ N(0, I): x~_T comes out sqrt(abar_T) too small in relative terms (about 2e-5 at T = 1000).
    Our samplers start from x_T ~ N(0, I); the comparison above passes diffusers that x~_T."""
    for cls in (EulerDiscreteScheduler, HeunDiscreteScheduler):
        s = cls(num_train_timesteps=T, trained_betas=BETAS.tolist(), timestep_spacing="trailing")
        s.set_timesteps(10)
        sigma_max = float(s.sigmas.max())
        assert float(s.init_noise_sigma) == pytest.approx(sigma_max, rel=1e-6)
        assert sigma_max == pytest.approx(float(((1 - ABAR[-1]) / ABAR[-1]).sqrt()), rel=1e-4)
        assert float(s.init_noise_sigma) < (sigma_max**2 + 1) ** 0.5
