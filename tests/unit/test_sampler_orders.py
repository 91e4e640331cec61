"""The ODE samplers' end-to-end order, measured: on Gaussian data N(MU, SD^2) eps* is affine and
the probability-flow map from x_T to x_0 is known in closed form (in x~ = x_t / sqrt(abar_t) =
x_0 + sigma eps the marginals are N(MU, SD^2 + sigma^2), and the flow keeps each point's
standardised position: x_0 = MU + (x~_T - MU) SD / sqrt(SD^2 + sigma_T^2)). Each sampler runs in
float64 from the same x_T at S and 2 S steps; the order is log2 of the ratio of their largest
errors. `python -m pytest tests/unit/test_sampler_orders.py -s` prints the table that
docs/samplers.md quotes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SamplerConfig, sample

MU, SD = 1.5, 0.3
STEPS = (10, 20, 40, 80, 160, 320)
D = DiffusionConfig(T=1000, schedule="linear", beta_start=1e-4, beta_end=0.02, variance="beta").build()
ABAR = torch.from_numpy(D.np["alphas_cumprod"])  # index t = 0..T


def eps_star(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    ab = ABAR[t].view(-1, 1).to(x.dtype)
    return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * SD**2 + 1 - ab)


def exact_map(x_T: torch.Tensor) -> torch.Tensor:
    ab = float(ABAR[-1])
    sigma2 = (1 - ab) / ab
    return MU + (x_T / math.sqrt(ab) - MU) * SD / math.sqrt(SD**2 + sigma2)


def errors(sampler: str) -> dict[int, float]:
    x_T = torch.linspace(-3, 3, 201, dtype=torch.float64)[:, None]
    want = exact_map(x_T)
    out = {}
    for S in STEPS:
        x0, _ = sample(D, eps_star, x_T.shape, torch.Generator(), sampler=SamplerConfig(sampler, S), x_T=x_T)
        out[S] = float((x0.double() - want).abs().max())
    return out


def orders(err: dict[int, float]) -> list[float]:
    return [math.log2(err[a] / err[b]) for a, b in zip(STEPS, STEPS[1:])]


def test_measured_orders_of_the_ode_samplers():
    table = {name: errors(name) for name in ("euler", "heun", "dpmpp_2m")}
    print("\nsampler   " + "  ".join(f"S={s:<4}" for s in STEPS) + "   orders S -> 2S")
    for name, err in table.items():
        print(
            f"{name:<9} "
            + "  ".join(f"{err[s]:.1e}" for s in STEPS)
            + "   "
            + " ".join(f"{o:.2f}" for o in orders(err))
        )
    euler = orders(table["euler"])
    assert all(0.8 <= o <= 1.2 for o in euler), euler  # first order, as stated
    # Heun is more accurate than Euler at every S, and its order is above Euler's while S is small
    assert all(table["heun"][s] < table["euler"][s] for s in STEPS)
    assert np.mean(orders(table["heun"])[:3]) > 1.3


COSINE = DiffusionConfig(T=1000, schedule="cosine", beta_start=None, beta_end=None, variance="beta").build()


@pytest.mark.xfail(
    strict=True,
    reason="known: under the cosine schedule (sigma_T about 2e4) Heun's first step is far off, so at S = 10 "
    "Heun's error (2.75) is about 14x Euler's (0.19); EDM clips sigma_max (80). Not fixed yet: this turns "
    "into a failure (strict) when it is",
)
def test_heun_is_no_worse_than_euler_under_the_cosine_schedule_at_10_steps():
    abar = torch.from_numpy(COSINE.np["alphas_cumprod"])

    def eps(x, t):
        ab = abar[t].view(-1, 1).to(x.dtype)
        return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * SD**2 + 1 - ab)

    ab_T = float(abar[-1])
    x_T = torch.linspace(-3, 3, 201, dtype=torch.float64)[:, None]
    want = MU + (x_T / math.sqrt(ab_T) - MU) * SD / math.sqrt(SD**2 + (1 - ab_T) / ab_T)
    err = {}
    for name in ("euler", "heun"):
        x0, _ = sample(COSINE, eps, x_T.shape, torch.Generator(), sampler=SamplerConfig(name, 10), x_T=x_T)
        err[name] = float((x0.double() - want).abs().max())
    print(f"\ncosine schedule, S = 10: euler {err['euler']:.2e}, heun {err['heun']:.2e}")
    assert err["heun"] <= err["euler"]
