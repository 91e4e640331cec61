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
e. Every ODE sampler of ddpm_lab.core.sampling (ODE_SAMPLERS: Euler, Heun, DPM-Solver++) at S in
   (10, 25) against its diffusers scheduler (EulerDiscreteScheduler, HeunDiscreteScheduler,
   DPMSolverMultistepScheduler; ddpm_lab/tools/diffusers_ref.py), loop (a) only, from the same x_T
   (Euler and Heun: x~_T = x_T / sqrt(abar_T), diffusers' own x_T being sigma_max z:
   tests/unit/test_sampler_contract.py pins that quirk): time ratio, best of 5 k runs each (target: no slower than diffusers), and largest
   |ours - diffusers| (target <= 1e-3, float32).

Every timing is the best of k runs (k printed), ours and diffusers' interleaved. The machine is
shared: the load average before and after is printed.

    .venv/bin/python benchmarks/bench_samplers.py [--threads 2] [--repeat 3] [--quick]
                                                  [--write [benchmarks/results/samplers.json]]
(diffusers: pip install -r requirements-bench.txt)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import ODE_SAMPLERS, SAMPLERS, SamplerConfig
from ddpm_lab.runtime.io import load_params
from ddpm_lab.runtime.params import from_section

if __package__:  # python -m benchmarks.bench_samplers
    from . import harness
    from .sampler_loops import diffusers_same_call, diffusers_user, forward_and_mm_times, load_network
    from .sampler_loops import make_scheduler, ours, race
else:  # python benchmarks/bench_samplers.py: its folder, benchmarks/, comes first on the import path
    import harness
    from sampler_loops import diffusers_same_call, diffusers_user, forward_and_mm_times, load_network
    from sampler_loops import make_scheduler, ours, race

STEPS = (10, 20, 50, 100, 250, 1000)
ODE_STEPS = (10, 25)  # the low-NFE regime (docs/samplers.md): Heun's 2 S - 1 evaluations are 19 and 49
ODE_REPEAT = 5  # the ODE timings are the best of 5 k runs (0.1-0.3 s each)
RESPACED = tuple(s for s in SAMPLERS if s not in ODE_SAMPLERS)  # ddpm and ddim, on respaced timesteps
DDIM_STEPS = 50
DEFAULT_WRITE = harness.RESULTS / "samplers.json"


def against_diffusers(rows, diffusion, model, shape, k: int, timed: dict) -> None:
    """a + b: Algorithm 2 (all T steps) and DDIM-50, ours against diffusers' schedulers two ways;
    our best times kept in timed[sampler, S]."""
    n, T = shape[0], diffusion.T
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
        label = type(make_scheduler(kind, diffusion, S)).__name__
        ok = best["ours"] <= 6 if kind == "ddpm" and n == 10_000 else None
        rows.add(
            f"{name}, {n:,} draws: ours",
            f"{best['ours']:.2f} s (k = {k}; worst {worst['ours']:.2f} s)",
            "" if ok is None else "<= 6 s",
            ok,
        )
        for way, what in (("same_call", "our network call (a)"), ("user", "user's network call (b)")):
            rows.add(f"{name}: {label} loop, {what}", f"{best[way]:.2f} s; ours / it = {best['ours'] / best[way]:.2f}")
        for way, what in (("same_call", "a"), ("user", "b")):
            d = (out["ours"] - out[way]).abs().max().item()
            rows.add(
                f"{name}: max abs diff ours vs diffusers ({what}), same noise",
                f"{d:.2e} over {n:,} draws",
                "<= 0.02",
                d <= 0.02,
            )


def flop_rate(rows, model, n: int, T: int, k: int, reps: int, alg2: float) -> None:
    """c: the network's FLOP rate at n rows against a plain mm chain of the same shapes."""
    calls, flops, t_fwd, t_mm = forward_and_mm_times(model, n, T // 2, k, reps)
    print(
        f"c. Network FLOP rate at {n:,} rows ({calls} Linear calls, {flops / 1e6:.1f} MFLOP per call; "
        f"{reps} calls per timing)"
    )
    rows.add(f"forward pass of the network, {n:,} rows", f"{t_fwd * 1e3:.3f} ms = {flops / t_fwd / 1e9:.1f} GFLOP/s")
    rows.add("torch.mm chain of the same shapes", f"{t_mm * 1e3:.3f} ms = {flops / t_mm / 1e9:.1f} GFLOP/s")
    rows.add(
        f"Algorithm 2 floors: {T} forwards / {T} mm chains", f"{T * t_fwd:.2f} s / {T * t_mm:.2f} s (of {alg2:.2f} s)"
    )


def ode_samplers(rows, diffusion, model, shape, k: int, ode_steps) -> None:
    """e: the ODE samplers at low NFE against their diffusers schedulers, the same network call (a)
    and x_T (Euler and Heun step x~ = x_t / sqrt(abar_t): the schedulers that start from
    sigma_max z rather than from z, init_noise_sigma != 1)."""
    n, T = shape[0], diffusion.T
    print(f"e. ODE samplers vs diffusers, {n:,} draws, the same noise levels and x_T (loop (a))")
    for kind in ODE_SAMPLERS:
        for S in ode_steps:
            cfg = SamplerConfig(kind, S)
            scheduler = make_scheduler(kind, diffusion, S)
            on_x_tilde = scheduler.init_noise_sigma != 1.0
            x_scale = float(diffusion.np["alphas_cumprod"][T]) ** -0.5 if on_x_tilde else 1.0
            fns = {
                "ours": lambda: ours(diffusion, model, shape, cfg),
                "same_call": lambda: diffusers_same_call(make_scheduler(kind, diffusion, S), model, shape, 0, x_scale),
            }
            best, worst, out = race(fns, ODE_REPEAT * k)  # short runs: more of them for a stable best
            ratio = best["ours"] / best["same_call"]
            name = cfg.describe(T)
            rows.add(
                f"{name}: ours / {type(scheduler).__name__} loop (a)",
                f"{best['ours']:.3f} s / {best['same_call']:.3f} s = {ratio:.2f}",
                "<= 1 (no slower)",
                ratio <= 1.0,
            )
            d = (out["ours"] - out["same_call"]).abs().max().item()
            rows.add(f"{name}: max abs diff ours vs diffusers (a)", f"{d:.2e} over {n:,} draws", "<= 1e-3", d <= 1e-3)


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
        help=f"also write the rows as JSON (default {DEFAULT_WRITE.relative_to(harness.ROOT)}: the README's table)",
    )
    ap.add_argument("--params", type=Path, default=harness.PARAMS)
    ap.add_argument("--model", type=Path, default=harness.ROOT / "models" / "eq12.pt")
    args = ap.parse_args(argv)
    if args.quick:
        args.draws, args.repeat = min(args.draws, 200), 1
    steps = (10, DDIM_STEPS) if args.quick else STEPS
    k, n = args.repeat, args.draws
    torch.set_num_threads(args.threads)
    import diffusers

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion")
    diffusion, T = dcfg.build(), dcfg.T
    model, network = load_network(params, dcfg, args.model.resolve())
    shape = (n, model.config.data_dim)
    load0 = os.getloadavg()[0]
    rows = harness.Rows(widths=(73, 36))
    print(
        f"Sampler benchmark ({os.cpu_count()} CPUs, load average {load0:.2f}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; diffusers {diffusers.__version__}; best of k = {k} each)"
    )
    print(f"  network: {network}; T = {T}, {dcfg.schedule} schedule, variance {dcfg.variance}")
    timed = {}  # (sampler, S) -> our best time, reused by d
    against_diffusers(rows, diffusion, model, shape, k, timed)
    flop_rate(rows, model, n, T, k, 20 if args.quick else 200, timed["ddpm", T])

    # d: respaced DDPM and DDIM against S.
    print(f"d. Respaced DDPM and DDIM (eta 0): {n:,} draws, best of k = {k} (timings of a/b reused)")
    for S in steps:
        need = {kind: SamplerConfig(kind, S) for kind in RESPACED if (kind, S) not in timed}
        best, _, _ = race({kind: (lambda c=c: ours(diffusion, model, shape, c)) for kind, c in need.items()}, k)
        for kind in need:
            timed[kind, S] = best[kind]
        rows.add(f"S = {S:>4}: respaced DDPM / DDIM", f"{timed['ddpm', S]:.2f} s / {timed['ddim', S]:.2f} s")
    ode_samplers(rows, diffusion, model, shape, k, (10,) if args.quick else ODE_STEPS)
    print(f"  load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")

    if args.write:
        doc = {"benchmark": "samplers", "cpus": os.cpu_count(), "torch": torch.__version__}
        doc.update(diffusers=diffusers.__version__, threads=args.threads, network=network, rows=rows)
        harness.write_results(args.write, doc)


if __name__ == "__main__":
    main()
