"""Benchmark of the image branch on the params in params.yaml, from a clean state.

Runs prepare_images -> train_images -> sample_images -> evaluate_images as the pipeline does
(same commands, outputs into a temporary folder so the tracked outputs are untouched, and no
resumable checkpoint to start from), times them, and prints the metrics against their
targets. --metrics PATH only reads an existing metrics JSON (e.g. metrics/images.json).

    python benchmarks/bench_images.py                 # full run (minutes)
    python benchmarks/bench_images.py --metrics metrics/images.json [--write benchmarks/results/images.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(stage: str, *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # stderr: progress bars
    if proc.returncode != 0:
        raise SystemExit(f"{stage} exited {proc.returncode}; rerun it by hand to see why")
    dt = time.perf_counter() - t0
    print(f"  {stage:16s} {dt:7.1f} s   {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ''}")
    return dt


def report(h: dict, m: dict, wall: float | None, write: Path | None = None) -> None:
    """Print the headline h and details m of evaluate_images against the targets (and write them)."""
    gen, ho, mem = m["classes"]["generated"], m["classes"]["heldout"], m["memorisation"]
    fl, kf = m["fd_floor"], m["kid_floor"]
    rows = [
        (
            "wall time prepare + train + sample + metrics",
            f"{wall / 60:.2f} min" if wall is not None else "not run",
            "<= 8 min",
            None if wall is None else wall <= 480,
        ),
        (
            "Frechet distance / floor median",
            f"{h['fd_ratio']:.2f} (FD {m['fd']['value']:.3f}; floor {fl['median']:.3f} "
            f"[{fl['p05']:.3f}, {fl['p95']:.3f}] over {len(fl['draws'])} draws)",
            "inside the floor band",
            m["fd_inside_floor_band"],
        ),
        (
            "KID",
            f"{h['kid']:.3g} +- {h['kid_se']:.3g} (floor {kf['median']:.3g} [{kf['p05']:.3g}, {kf['p95']:.3g}])",
            "inside the floor band",
            m["kid_inside_floor_band"],
        ),
        ("classifier held-out accuracy", f"{m['classifier']['heldout_accuracy']:.3f}", "(trust in the features)", None),
        (
            "digits present in samples",
            f"{gen['classes_present']}/10 (held-out: {ho['classes_present']}/10)",
            "10",
            gen["classes_present"] == 10,
        ),
        (
            "mean classifier confidence",
            f"{gen['mean_confidence']:.3f} (held-out: {ho['mean_confidence']:.3f})",
            ">= 0.9",
            gen["mean_confidence"] >= 0.9,
        ),
        (
            "NN distance to train, min",
            f"samples {mem['generated_nn_min']:.3f} vs held-out {mem['heldout_nn_min']:.3f}",
            "samples >= held-out",
            mem["n_generated_closer_than_heldout_min"] == 0,
        ),
    ]
    print(f"\n{'metric':44s} {'value':66s} {'target':22s} ok")
    for name, value, target, ok in rows:
        print(f"{name:44s} {value:66s} {target:22s} {'' if ok is None else ('yes' if ok else 'NO')}")
    print(f"\nclass histogram of the samples: {gen['histogram']}")
    if write:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(
            json.dumps(
                {
                    "benchmark": "images",
                    "rows": [{"what": a, "measured": b, "target": c, "met": d} for a, b, c, d in rows],
                },
                indent=2,
            )
            + "\n"
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument(
        "--metrics",
        type=Path,
        help="only read this headline metrics JSON (its details beside it in details/); run nothing",
    )
    ap.add_argument("--write", type=Path, help="also write the rows as JSON (benchmarks/results/images.json)")
    args = ap.parse_args(argv)
    if args.metrics:
        details = args.metrics.parent / "details" / args.metrics.name
        report(json.loads(args.metrics.read_text()), json.loads(details.read_text()), None, args.write)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        print(f"image branch, params {args.params}, outputs in {t}")
        wall = run("prepare_images", "--params", args.params, "--out", str(t / "split.npz"))
        wall += run(
            "train_images",
            "--params",
            args.params,
            "--data",
            str(t / "split.npz"),
            "--model-out",
            str(t / "unet.pt"),
            "--resume",
            str(t / "resume.pt"),
            "--metrics-out",
            str(t / "train.json"),
            "--history-out",
            str(t / "loss.csv"),
        )
        wall += run(
            "sample_images",
            "--params",
            args.params,
            "--model",
            str(t / "unet.pt"),
            "--samples-out",
            str(t / "samples.npz"),
            "--grid-out",
            str(t / "grid.png"),
        )
        wall += run(
            "evaluate_images",
            "--params",
            args.params,
            "--data",
            str(t / "split.npz"),
            "--samples",
            str(t / "samples.npz"),
            "--out",
            str(t / "images.json"),
            "--details-out",
            str(t / "details" / "images.json"),
        )
        report(
            json.loads((t / "images.json").read_text()),
            json.loads((t / "details" / "images.json").read_text()),
            wall,
            args.write,
        )


if __name__ == "__main__":
    main()
