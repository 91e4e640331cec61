"""Benchmark of data-parallel image training: steps/s of train_images with nproc 1 and
2 on the params in params.yaml (the default U-Net and global batch), and how far 2 ranks drift
from 1 process over the measured steps.

Each configuration runs the real stage (`python -m stages.train_images`, outputs in a temporary
folder, no checkpoints) at a short and a long step count; steps/s is their difference in steps
over their difference in wall time, so process start-up, imports, the rendezvous and the data
load (the fixed cost, printed too) cancel. Best of --repeats for each. On 2 cores no speed-up is
expected from 2 ranks (each gets one core, as one process with 2 threads does); correctness is
the point, and the drift rows say how close the weights stay at this scale.

    python benchmarks/bench_ddp.py [--short 20 --long 120 --repeats 2] [--write benchmarks/results/ddp.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.bench_ddp
    from . import harness
else:  # python benchmarks/bench_ddp.py: its folder, benchmarks/, comes first on the import path
    import harness

CONFIGS = [  # (label, nproc, threads per process): each uses the machine's 2 cores
    ("1 process, 1 thread", 1, 1),
    ("1 process, 2 threads", 1, 2),
    ("2 processes (gloo), 1 thread each", 2, 1),
]


def run_stage(folder: Path, params: dict, data: Path, steps: int, nproc: int, threads: int) -> float:
    """Wall time of train_images for `steps` steps in `folder`."""
    train = dict(steps=steps, warmup=min(params["images_train"]["warmup"], steps), checkpoint_every=0, nproc=nproc)
    train.update(threads=threads, backend="gloo", device="cpu")
    path = harness.write_params(
        folder / "params.yaml", harness.override(params, harness.dotted({"images_train": train}))
    )
    done = harness.run_stage(
        "train_images",
        *("--params", str(path), "--data", str(data), "--model-out", str(folder / "model.pt")),
        *("--resume", str(folder / "resume.pt"), "--metrics-out", str(folder / "metrics.json")),
        *("--history-out", str(folder / "loss.csv")),
    )
    if not done.ok:
        raise SystemExit(
            f"train_images (nproc {nproc}) exited {done.proc.returncode}: {done.proc.stderr.strip()[-500:]}"
        )
    return done.seconds


def drift(a: Path, b: Path) -> tuple[float, float]:
    """(largest relative difference of the logged losses, largest per-tensor max |a - b| / max |b|
    of the EMA weights) between two runs' outputs."""
    la = np.loadtxt(a / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    lb = np.loadtxt(b / "loss.csv", delimiter=",", skiprows=1)[:, 1]
    wa = torch.load(a / "model.pt", weights_only=True)["state_dict"]
    wb = torch.load(b / "model.pt", weights_only=True)["state_dict"]
    rel_w = max(((wa[k] - wb[k]).abs().max() / wb[k].abs().max().clamp_min(1e-12)).item() for k in wb)
    return float(np.max(np.abs(la / lb - 1))), rel_w


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=harness.PARAMS, type=Path)
    ap.add_argument("--data", default=harness.ROOT / "data/images/split.npz", type=Path)
    ap.add_argument("--short", type=int, default=20)
    ap.add_argument("--long", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/ddp.json)")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file: run `dvc repro prepare_images` first")
    if not 1 <= args.short < args.long:
        raise SystemExit(f"--short {args.short} / --long {args.long}: expected 1 <= short < long")
    params = harness.read_params(args.params)
    batch = params["images_train"]["batch_size"]
    print(
        f"train_images, global batch {batch}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; "
        f"{args.short} and {args.long} steps, best of {args.repeats}"
    )
    rows, results, spreads = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        for label, nproc, threads in CONFIGS:
            times = {}
            for steps in (args.short, args.long):
                folder = Path(tmp) / f"{nproc}x{threads}_{steps}"
                folder.mkdir()
                times[steps] = [
                    run_stage(folder, params, args.data, steps, nproc, threads) for _ in range(args.repeats)
                ]
            best = {steps: min(t) for steps, t in times.items()}
            rate = (args.long - args.short) / (best[args.long] - best[args.short])
            fixed = best[args.short] - args.short / rate
            # the spread: the rate of each repeat's (short, long) pair
            spread = [(args.long - args.short) / (tl - ts) for ts, tl in zip(times[args.short], times[args.long])]
            band = f"repeats {min(spread):.2f}-{max(spread):.2f}"
            results[(nproc, threads)] = rate
            spreads[(nproc, threads)] = spread
            print(
                f"  {label:36s} {rate:6.2f} steps/s ({band})   fixed cost {fixed:5.1f} s   "
                f"({best[args.short]:.1f} s / {best[args.long]:.1f} s)"
            )
            rows.append(
                harness.Row(
                    f"train_images, {label}: steps/s (global batch {batch}), from the best times",
                    f"{rate:.2f} steps/s ({band} over {args.repeats}; start-up and data {fixed:.1f} s)",
                )
            )
        loss_rel, w_rel = drift(Path(tmp) / f"2x1_{args.long}", Path(tmp) / f"1x1_{args.long}")
    ratio = results[(2, 1)] / results[(1, 1)]
    ratio2 = results[(2, 1)] / results[(1, 2)]

    def ratio_band(other: tuple[int, int]) -> str:
        """The range of the ratio over the repeats' rates (extremes against extremes)."""
        two, one = spreads[(2, 1)], spreads[other]
        return f"{min(two) / max(one):.2f}-{max(two) / min(one):.2f}"

    print(
        f"  2 processes / 1 process (1 thread each): {ratio:.2f}x ({ratio_band((1, 1))}); "
        f"/ 1 process with 2 threads: {ratio2:.2f}x ({ratio_band((1, 2))})"
    )
    print(
        f"  after {args.long} steps, 2 ranks vs 1 process: logged losses within {loss_rel:.1e} relative, "
        f"EMA weights within {w_rel:.1e} relative (per-tensor max)"
    )
    rows.append(
        harness.Row(
            "train_images, 2 gloo processes / 1 process (1 thread each): steps/s ratio",
            f"{ratio:.2f}x (range {ratio_band((1, 1))}; against 1 process with 2 threads: "
            f"{ratio2:.2f}x, range {ratio_band((1, 2))})",
            "none on 2 cores (correctness is the point)",
        )
    )
    rows.append(
        harness.Row(
            f"train_images, 2 gloo processes vs 1 process after {args.long} steps (default U-Net)",
            f"logged losses within {loss_rel:.1e}, EMA weights within {w_rel:.1e} (relative)",
            "<= 1e-4 (weights)",
            w_rel <= 1e-4,
        )
    )
    if args.write:
        doc = {"benchmark": "ddp", "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
