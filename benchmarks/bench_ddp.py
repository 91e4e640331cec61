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
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [  # (label, nproc, threads per process): each uses the machine's 2 cores
    ("1 process, 1 thread", 1, 1),
    ("1 process, 2 threads", 1, 2),
    ("2 processes (gloo), 1 thread each", 2, 1),
]


def run_stage(folder: Path, params: dict, data: Path, steps: int, nproc: int, threads: int) -> float:
    """Wall time of train_images for `steps` steps in `folder`."""
    train = {
        **params["images_train"],
        "steps": steps,
        "warmup": min(params["images_train"]["warmup"], steps),
        "checkpoint_every": 0,
        "nproc": nproc,
        "threads": threads,
        "backend": "gloo",
        "device": "cpu",
    }
    (folder / "params.yaml").write_text(yaml.safe_dump({**params, "images_train": train}, sort_keys=False))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.train_images",
            "--params",
            str(folder / "params.yaml"),
            "--data",
            str(data),
            "--model-out",
            str(folder / "model.pt"),
            "--resume",
            str(folder / "resume.pt"),
            "--metrics-out",
            str(folder / "metrics.json"),
            "--history-out",
            str(folder / "loss.csv"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"train_images (nproc {nproc}) exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


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
    ap.add_argument("--params", default=ROOT / "params.yaml", type=Path)
    ap.add_argument("--data", default=ROOT / "data/images/split.npz", type=Path)
    ap.add_argument("--short", type=int, default=20)
    ap.add_argument("--long", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/ddp.json)")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file: run `dvc repro prepare_images` first")
    if not 1 <= args.short < args.long:
        raise SystemExit(f"--short {args.short} / --long {args.long}: expected 1 <= short < long")
    params = yaml.safe_load(args.params.read_text())
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
                {
                    "what": f"train_images, {label}: steps/s (global batch {batch}), from the best times",
                    "measured": f"{rate:.2f} steps/s ({band} over {args.repeats}; start-up and data {fixed:.1f} s)",
                    "target": "",
                    "met": None,
                }
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
        {
            "what": "train_images, 2 gloo processes / 1 process (1 thread each): steps/s ratio",
            "measured": f"{ratio:.2f}x (range {ratio_band((1, 1))}; against 1 process with 2 threads: "
            f"{ratio2:.2f}x, range {ratio_band((1, 2))})",
            "target": "none on 2 cores (correctness is the point)",
            "met": None,
        }
    )
    rows.append(
        {
            "what": f"train_images, 2 gloo processes vs 1 process after {args.long} steps (default U-Net)",
            "measured": f"logged losses within {loss_rel:.1e}, EMA weights within {w_rel:.1e} (relative)",
            "target": "<= 1e-4 (weights)",
            "met": w_rel <= 1e-4,
        }
    )
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(
            json.dumps({"benchmark": "ddp", "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}, indent=1)
            + "\n"
        )
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
