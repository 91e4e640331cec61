"""The loops benchmarks/bench_samplers.py compares: ours (ddpm_lab.core.sampling.sample) and diffusers'
schedulers driven two ways (our network call, a diffusers user's), the network it samples with, the
interleaved best-of-k timing, and the plain torch.mm chain that bounds the network's FLOP rate."""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SamplerConfig, eps_caller, sample
from ddpm_lab.gmm.artifacts import load_eps_model
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.runtime.params import ConfigError, DataError, from_section
from ddpm_lab.tools.diffusers_ref import diffusers_scheduler

if __package__:  # benchmarks.sampler_loops, as python -m benchmarks.bench_samplers imports it
    from . import harness
else:  # sampler_loops, as python benchmarks/bench_samplers.py imports it (its folder first on the import path)
    import harness


def load_network(params: dict, dcfg: DiffusionConfig, path: Path):
    """(eps-network, description): the trained eq12 network, or a seeded untrained EpsMLP of the
    params' shape when the checkpoint is missing or does not fit params.yaml (trains nothing)."""
    means = np.asarray(params["gmm"]["means"], dtype=float)
    mcfg = from_section(MLPConfig, params, "model", data_dim=1 if means.ndim == 1 else means.shape[1])
    try:
        model = load_eps_model(path, dcfg)
        if model.config != mcfg:
            raise ConfigError(f"{path} has {model.config}, params.yaml {mcfg}")
        return model, f"trained network {os.path.relpath(path, harness.ROOT)}"
    except (ConfigError, DataError) as e:
        model = EpsMLP.seeded(mcfg, 0).eval().requires_grad_(False)
        return (
            model,
            f"UNTRAINED seeded EpsMLP: {os.path.relpath(path, harness.ROOT)} missing or stale ({str(e)[:120]})",
        )


def race(fns: dict, k: int) -> tuple[dict, dict, dict]:
    """Best and worst of k wall times of each callable, the callables interleaved (so a busy spell
    of the shared machine hits all of them), and each one's first result."""
    best, worst, first = {name: float("inf") for name in fns}, {name: 0.0 for name in fns}, {}
    for _ in range(k):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            best[name], worst[name] = min(best[name], dt), max(worst[name], dt)
            first.setdefault(name, out)
    return best, worst, first


# -- the three loops being compared ------------------------------------------------------------
def ours(diffusion, model, shape, cfg: SamplerConfig, seed: int = 0) -> torch.Tensor:
    return sample(diffusion, model, shape, torch.Generator().manual_seed(seed), sampler=cfg)[0]


def make_scheduler(kind: str, diffusion, steps: int):
    """diffusers' scheduler for our betas, S = steps, "trailing" spacing (ours: tau_i = round(i T / S))."""
    return diffusers_scheduler(kind, diffusion.np["betas"][1:], steps, diffusion.variance)


@torch.inference_mode()
def diffusers_same_call(scheduler, eps_model, shape, seed: int = 0, x_scale: float = 1.0, **step_kw) -> torch.Tensor:
    """Way (a): diffusers' scheduler loop around the very network call our sampler makes: the
    network's own `sampling_eps` for the visited timesteps when it has one (as `sample` does),
    else eps_model(x, t) on a batch of t. x_scale: the scheduler's x_T per N(0, I) draw (Euler and
    Heun work on x~_T = x_T / sqrt(abar_T); the network sees scale_model_input(x~) = x_t)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * x_scale
    eps_at = eps_caller(eps_model, [int(t) + 1 for t in scheduler.timesteps], shape[0])
    if "generator" in inspect.signature(scheduler.step).parameters:  # the ODE schedulers draw nothing
        step_kw["generator"] = g
    for t in scheduler.timesteps:
        eps = eps_at(scheduler.scale_model_input(x, t), int(t) + 1)
        x = scheduler.step(eps, t, x, **step_kw).prev_sample
    return x


@torch.no_grad()
def diffusers_user(scheduler, model, shape, seed: int = 0, **step_kw) -> torch.Tensor:
    """Way (b): the loop a diffusers user writes for the plain network (trained on t = 1..T)."""
    from diffusers.utils.torch_utils import randn_tensor

    generator = torch.Generator().manual_seed(seed)
    x = randn_tensor(shape, generator=generator)
    for t in scheduler.timesteps:
        noise_pred = model(x, (t + 1).expand(x.shape[0]))  # diffusers counts timesteps from 0
        x = scheduler.step(noise_pred, t, x, generator=generator, **step_kw).prev_sample
    return x


# -- FLOP rate ----------------------------------------------------------------------------------
def linear_calls(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every nn.Linear call in one forward pass, in call order."""
    calls = []

    def hook(m, inp, out):
        calls.append((inp[0].numel() // m.in_features, m.in_features, m.out_features))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode():
            model(x, t)
    finally:
        for h in handles:
            h.remove()
    return calls


def mm_chain(calls, seed: int = 0):
    """A plain torch.mm chain of the same shapes (each output feeds the next call whose shape fits)."""
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(r, i, generator=g) for r, i, _ in calls]
    weights = [torch.randn(i, o, generator=g) / i**0.5 for _, i, o in calls]

    def run():
        h = inputs[0]
        for a, w in zip(inputs, weights):
            h = torch.mm(h if h.shape == a.shape else a, w)
        return h

    return run


def forward_and_mm_times(model: nn.Module, n: int, t: int, k: int, reps: int) -> tuple[int, int, float, float]:
    """(Linear calls, FLOPs of one forward pass at n rows and timestep t, seconds of one forward
    pass, seconds of one mm chain of the same shapes): each the best of k timings of reps calls."""
    x = torch.randn(n, model.config.data_dim, generator=torch.Generator().manual_seed(0))
    t_batch = torch.full((n,), t, dtype=torch.long)
    calls = linear_calls(model, x, t_batch)
    flops = sum(2 * r * i * o for r, i, o in calls)
    chain = mm_chain(calls)

    def forward_many():
        with torch.inference_mode():
            for _ in range(reps):
                model(x, t_batch)

    def mm_many():
        for _ in range(reps):
            chain()

    best, _, _ = race({"forward": forward_many, "mm": mm_many}, k)
    return len(calls), flops, best["forward"] / reps, best["mm"] / reps
