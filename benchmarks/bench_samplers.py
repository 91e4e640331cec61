"""Benchmark of the samplers, side by side with diffusers' schedulers: speed and agreement, printed (not a test).

With the trained eq12 network (models/eq12.pt; a seeded untrained EpsMLP, said so, when that file
is missing or does not fit params.yaml: nothing is trained here), on this machine:

a. Algorithm 2 (ddpm_lab.core.sampling.sample): 10,000 draws x T steps.
b. diffusers' DDPMScheduler (T steps, variance_type = diffusion.variance: beta -> "fixed_large",
   beta_tilde -> "fixed_small") and DDIMScheduler (50 steps, eta 0, "trailing" spacing,
   set_alpha_to_one, no clipping, epsilon prediction), both on our betas (trained_betas;
   ddpm_lab/tools/diffusers_ref.py), with
   the same timesteps and the same noise (the same seeded torch.Generator: x_T first, then the
   steps' noise, which diffusers' step() draws in the same order), driven two ways:
   (a) with the very network callable and call of our sampler (t + 1 into a reused (B,) long
       buffer), so the time ratio isolates the sampler loop;
   (b) as a diffusers user writes it: model(x, (t + 1).expand(B)) for the plain trained network
       (diffusers' timesteps are 0-based, ours 1..T), then scheduler.step(...).prev_sample.
   Each gives a time ratio (ours / diffusers) and the largest |ours - diffusers| over all draws.
   They agree to float32 rounding, not bit for bit: diffusers keeps the schedule in float32
   (trained_betas cast to float32, alphas_cumprod a float32 cumprod) where ours is float64 until
   the per-step scalars, and it forms each step as x0_hat then the posterior mean (Eq. 15, Eq. 7)
   where ours applies Eq. 11 directly. The noise itself is identical: DDPMScheduler.step adds
   none at t' = 0 (our t = 1), like Algorithm 2, so the beta~_1 = 0 corner ("fixed_small" clamps
   it to 1e-20; diffusion.py uses beta~_2) never draws; DDIM with eta > 0 draws one extra tensor
   at its last step, multiplied by sigma = 0, after all of ours. Two diffusers quirks stay out of
   the configurations compared here (tests/unit/test_samplers_diffusers.py pins the first): respaced
   DDPMScheduler (S < T, trailing) adds noise at its last step too, since its last t' = T / S - 1
   is > 0 (sqrt(1 - abar_tau1) z with "fixed_large", where Algorithm 2 adds none); and
   DDIMScheduler.step takes prev_t = t' - T // S, the trailing subsequence only when S divides T
   (every S used here divides 1000).
c. The FLOP rate of one forward pass at 10,000 rows (2 * in * out * rows per nn.Linear call)
   next to a plain torch.mm chain of the same shapes: the machine's limit for this network.
d. Respaced DDPM and DDIM (eta 0) at S in (10, 20, 50, 100, 250, 1000): 10,000 draws each.
e. The ODE samplers (Euler, Heun, DPM-Solver++(2M)) at S in (10, 25) against diffusers'
   EulerDiscreteScheduler, HeunDiscreteScheduler and DPMSolverMultistepScheduler
   (ddpm_lab/tools/diffusers_ref.py), loop (a) only, from the same x_T (Euler and Heun: x~_T =
   x_T / sqrt(abar_T), diffusers' own x_T being sigma_max z: tests/unit/test_ode_samplers.py pins
   that quirk): time ratio, best of 5 k runs each (target: no slower than diffusers), and largest
   |ours - diffusers| (target <= 1e-3, float32).

Every timing is the best of k runs (k printed), ours and diffusers' interleaved. The machine is
shared: the load average before and after is printed.

    .venv/bin/python benchmarks/bench_samplers.py [--threads 2] [--repeat 3] [--quick]
                                                  [--write [benchmarks/results/samplers.json]]
(diffusers: pip install -r requirements-bench.txt)
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ddpm_lab.runtime.params import ConfigError, DataError, from_section
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.runtime.io import load_params
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.core.sampling import ODE_SAMPLERS, SamplerConfig, eps_caller, sample
from ddpm_lab.gmm.artifacts import load_eps_model
from ddpm_lab.tools.diffusers_ref import diffusers_scheduler

ROOT = Path(__file__).resolve().parents[1]

STEPS = (10, 20, 50, 100, 250, 1000)
ODE_STEPS = (10, 25)  # the low-NFE regime (docs/samplers.md): Heun's 2 S - 1 evaluations are 19 and 49
ODE_REPEAT = 5  # the ODE timings are the best of 5 k runs (0.1-0.3 s each)
ODE_SCHEDULERS = {
    "euler": "EulerDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
}
DDIM_STEPS = 50
DEFAULT_WRITE = ROOT / "benchmarks" / "results" / "samplers.json"


def load_network(params: dict, dcfg: DiffusionConfig, path: Path):
    """(eps-network, description): the trained eq12 network, or a seeded untrained EpsMLP of the
    params' shape when the checkpoint is missing or does not fit params.yaml (trains nothing)."""
    means = np.asarray(params["gmm"]["means"], dtype=float)
    mcfg = from_section(MLPConfig, params, "model", data_dim=1 if means.ndim == 1 else means.shape[1])
    try:
        model = load_eps_model(path, dcfg)
        if model.config != mcfg:
            raise ConfigError(f"{path} has {model.config}, params.yaml {mcfg}")
        return model, f"trained network {os.path.relpath(path, ROOT)}"
    except (ConfigError, DataError) as e:
        model = EpsMLP.seeded(mcfg, 0).eval().requires_grad_(False)
        return model, f"UNTRAINED seeded EpsMLP: {os.path.relpath(path, ROOT)} missing or stale ({str(e)[:120]})"


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (torch.set_num_threads; default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="k: each timing is the best of k runs (default 3)")
    ap.add_argument("--draws", type=int, default=10_000, help="draws per sampling run (default 10,000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 draws, k = 1, S in (10, 50)")
    ap.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=DEFAULT_WRITE,
        help=f"also write the rows as JSON (default {DEFAULT_WRITE.relative_to(ROOT)}: the README's table)",
    )
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "eq12.pt")
    args = ap.parse_args(argv)
    if args.quick:
        args.draws, args.repeat = min(args.draws, 200), 1
    steps = (10, DDIM_STEPS) if args.quick else STEPS
    ode_steps = (10,) if args.quick else ODE_STEPS
    k, n = args.repeat, args.draws
    torch.set_num_threads(args.threads)
    import diffusers

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion")
    diffusion, T = dcfg.build(), dcfg.T
    model, network = load_network(params, dcfg, args.model.resolve())
    shape = (n, model.config.data_dim)
    load0 = os.getloadavg()[0]

    rows = []

    def row(label, value, target="", ok=None):
        rows.append({"what": label, "measured": value, "target": target, "met": ok})
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {label:<73} {value:<36} {target}{mark}", flush=True)

    print(
        f"Sampler benchmark ({os.cpu_count()} CPUs, load average {load0:.2f}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; diffusers {diffusers.__version__}; best of k = {k} each)"
    )
    print(f"  network: {network}; T = {T}, {dcfg.schedule} schedule, variance {dcfg.variance}")

    # a + b: Algorithm 2 and DDIM-50, ours against diffusers' schedulers two ways.
    timed = {}  # (sampler, S) -> our best time, reused by d
    print(f"a/b. Ours vs diffusers, {n:,} draws, the same timesteps and noise")
    for kind, S in (("ddpm", T), ("ddim", DDIM_STEPS)):
        cfg = SamplerConfig(kind, S)
        kw = {"eta": 0.0} if kind == "ddim" else {}
        fns = {
            "ours": lambda: ours(diffusion, model, shape, cfg),
            "same_call": lambda: diffusers_same_call(make_scheduler(kind, diffusion, S), model, shape, **kw),
            "user": lambda: diffusers_user(make_scheduler(kind, diffusion, S), model, shape, **kw),
        }
        best, worst, out = race(fns, k)
        timed[kind, S] = best["ours"]
        name = f"Algorithm 2 ({S} steps)" if kind == "ddpm" else f"DDIM eta 0 ({S} steps)"
        label = "DDPMScheduler" if kind == "ddpm" else "DDIMScheduler"
        ok = best["ours"] <= 6 if kind == "ddpm" and n == 10_000 else None
        row(
            f"{name}, {n:,} draws: ours",
            f"{best['ours']:.2f} s (k = {k}; worst {worst['ours']:.2f} s)",
            "" if ok is None else "<= 6 s",
            ok,
        )
        for way, what in (("same_call", "our network call (a)"), ("user", "user's network call (b)")):
            row(f"{name}: {label} loop, {what}", f"{best[way]:.2f} s; ours / it = {best['ours'] / best[way]:.2f}")
        for way, what in (("same_call", "a"), ("user", "b")):
            d = (out["ours"] - out[way]).abs().max().item()
            row(
                f"{name}: max abs diff ours vs diffusers ({what}), same noise",
                f"{d:.2e} over {n:,} draws",
                "<= 0.02",
                d <= 0.02,
            )

    # c: the network's FLOP rate against a plain mm chain of the same shapes.
    rows_c = n
    x = torch.randn(rows_c, model.config.data_dim, generator=torch.Generator().manual_seed(0))
    t_batch = torch.full((rows_c,), T // 2, dtype=torch.long)
    calls = linear_calls(model, x, t_batch)
    flops = sum(2 * r * i * o for r, i, o in calls)
    reps = 20 if args.quick else 200
    chain = mm_chain(calls)

    def forward_many():
        with torch.inference_mode():
            for _ in range(reps):
                model(x, t_batch)

    def mm_many():
        for _ in range(reps):
            chain()

    best, _, _ = race({"forward": forward_many, "mm": mm_many}, k)
    t_fwd, t_mm = best["forward"] / reps, best["mm"] / reps
    print(
        f"c. Network FLOP rate at {rows_c:,} rows ({len(calls)} Linear calls, {flops / 1e6:.1f} MFLOP per call; "
        f"{reps} calls per timing)"
    )
    row(f"forward pass of the network, {rows_c:,} rows", f"{t_fwd * 1e3:.3f} ms = {flops / t_fwd / 1e9:.1f} GFLOP/s")
    row("torch.mm chain of the same shapes", f"{t_mm * 1e3:.3f} ms = {flops / t_mm / 1e9:.1f} GFLOP/s")
    alg2 = timed["ddpm", T]
    row(f"Algorithm 2 floors: {T} forwards / {T} mm chains", f"{T * t_fwd:.2f} s / {T * t_mm:.2f} s (of {alg2:.2f} s)")

    # d: respaced DDPM and DDIM against S.
    print(f"d. Respaced DDPM and DDIM (eta 0): {n:,} draws, best of k = {k} (timings of a/b reused)")
    for S in steps:
        need = {kind: SamplerConfig(kind, S) for kind in ("ddpm", "ddim") if (kind, S) not in timed}
        best, _, _ = race({kind: (lambda c=c: ours(diffusion, model, shape, c)) for kind, c in need.items()}, k)
        for kind in need:
            timed[kind, S] = best[kind]
        row(f"S = {S:>4}: respaced DDPM / DDIM", f"{timed['ddpm', S]:.2f} s / {timed['ddim', S]:.2f} s")
    # e: the ODE samplers at low NFE against their diffusers schedulers, the same network call.
    print(f"e. ODE samplers vs diffusers, {n:,} draws, the same noise levels and x_T (loop (a))")
    for kind in ODE_SAMPLERS:
        for S in ode_steps:
            cfg = SamplerConfig(kind, S)
            x_scale = 1.0 if kind == "dpmpp_2m" else float(diffusion.np["alphas_cumprod"][T]) ** -0.5
            fns = {
                "ours": lambda: ours(diffusion, model, shape, cfg),
                "same_call": lambda: diffusers_same_call(make_scheduler(kind, diffusion, S), model, shape, 0, x_scale),
            }
            best, worst, out = race(fns, ODE_REPEAT * k)  # short runs: more of them for a stable best
            ratio = best["ours"] / best["same_call"]
            name = cfg.describe(T)
            row(
                f"{name}: ours / {ODE_SCHEDULERS[kind]} loop (a)",
                f"{best['ours']:.3f} s / {best['same_call']:.3f} s = {ratio:.2f}",
                "<= 1 (no slower)",
                ratio <= 1.0,
            )
            d = (out["ours"] - out["same_call"]).abs().max().item()
            row(f"{name}: max abs diff ours vs diffusers (a)", f"{d:.2e} over {n:,} draws", "<= 1e-3", d <= 1e-3)

    print(f"  load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")

    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(
            json.dumps(
                {
                    "benchmark": "samplers",
                    "cpus": os.cpu_count(),
                    "torch": torch.__version__,
                    "diffusers": diffusers.__version__,
                    "threads": args.threads,
                    "network": network,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
