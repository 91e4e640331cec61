"""Benchmark of the image branch on the params in params.yaml, from a clean state.

Runs prepare_images -> train_images -> sample_images -> evaluate_images as the pipeline does
(same commands, outputs into a temporary folder so the tracked outputs are untouched, and no
resumable checkpoint to start from), times them, and prints the metrics against their
targets. --replicates N runs the branch N times, with `replicate` 0..N-1 (each training and
sampling seed folded with it, as `dvc exp run -S replicate=r` does), and counts the replicates
whose FD and KID are both inside the floor's band. --metrics PATH only reads an existing metrics
JSON (e.g. metrics/images.json).

    python benchmarks/bench_images.py [--replicates 5] [--write benchmarks/results/images.json]
    python benchmarks/bench_images.py --metrics metrics/images.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

if __package__:  # python -m benchmarks.bench_images
    from . import harness
else:  # python benchmarks/bench_images.py: its folder, benchmarks/, comes first on the import path
    import harness


def run(stage: str, *args: str) -> float:
    done = harness.run_stage(stage, *args, stderr=subprocess.DEVNULL)  # stderr: progress bars
    if not done.ok:
        raise SystemExit(f"{stage} exited {done.proc.returncode}; rerun it by hand to see why")
    out = done.proc.stdout.strip()
    print(f"  {stage:16s} {done.seconds:7.1f} s   {out.splitlines()[-1] if out else ''}")
    return done.seconds


WALL_TARGET_S = 300  # the whole branch on 2 cores


def report(h: dict, m: dict, wall: float | None, write: Path | None = None, extra: list | None = None) -> None:
    """Print the headline h and details m of evaluate_images against the targets, then the rows
    `extra` (harness.Row) of the replicates (and write them all)."""
    gen, ho, mem = m["classes"]["generated"], m["classes"]["heldout"], m["memorisation"]
    fl, kf = m["fd_floor"], m["kid_floor"]
    rows = [
        harness.Row(
            "wall time prepare + train + sample + metrics (median over the replicates run)",
            f"{wall / 60:.2f} min ({wall:.0f} s)" if wall is not None else "not run",
            f"<= {WALL_TARGET_S // 60} min",
            None if wall is None else wall <= WALL_TARGET_S,
        ),
        harness.Row(
            "Frechet distance / floor median",
            f"{h['fd_ratio']:.2f} (FD {m['fd']['value']:.3f}; floor {fl['median']:.3f} "
            f"[{fl['p05']:.3f}, {fl['p95']:.3f}] over {len(fl['draws'])} draws)",
            "inside the floor band",
            m["fd_inside_floor_band"],
        ),
        harness.Row(
            "KID",
            f"{h['kid']:.3g} +- {h['kid_se']:.3g} (floor {kf['median']:.3g} [{kf['p05']:.3g}, {kf['p95']:.3g}])",
            "inside the floor band",
            m["kid_inside_floor_band"],
        ),
        harness.Row(
            "classifier held-out accuracy", f"{m['classifier']['heldout_accuracy']:.3f}", "(trust in the features)"
        ),
        harness.Row(
            "digits present in samples",
            f"{gen['classes_present']}/10 (held-out: {ho['classes_present']}/10)",
            "10",
            gen["classes_present"] == 10,
        ),
        harness.Row(
            "mean classifier confidence",
            f"{gen['mean_confidence']:.3f} (held-out: {ho['mean_confidence']:.3f})",
            ">= 0.9",
            gen["mean_confidence"] >= 0.9,
        ),
        harness.Row(
            "NN distance to train, min",
            f"samples {mem['generated_nn_min']:.3f} vs held-out {mem['heldout_nn_min']:.3f}",
            "samples >= held-out",
            mem["n_generated_closer_than_heldout_min"] == 0,
        ),
    ]
    rows += extra or []
    print(f"\n{'metric':44s} {'value':66s} {'target':22s} ok")
    for r in rows:
        print(f"{r.what:44s} {r.measured:66s} {r.target:22s} {'' if r.met is None else ('yes' if r.met else 'NO')}")
    print(f"\nclass histogram of the samples: {gen['histogram']}")
    if write:
        harness.write_results(write, {"benchmark": "images", "rows": rows})


def branch(params: Path, out: Path) -> tuple[dict, dict, float]:
    """prepare -> train -> sample -> evaluate on `params`, outputs under `out`: the headline and
    details of evaluate_images and the summed wall time of the four stages (s)."""
    p = ["--params", str(params)]
    wall = run("prepare_images", *p, "--out", str(out / "split.npz"))
    wall += run(
        "train_images",
        *p,
        *("--data", str(out / "split.npz"), "--model-out", str(out / "unet.pt"), "--resume", str(out / "resume.pt")),
        *("--metrics-out", str(out / "train.json"), "--history-out", str(out / "loss.csv")),
    )
    wall += run(
        "sample_images",
        *p,
        *(
            "--model",
            str(out / "unet.pt"),
            "--samples-out",
            str(out / "samples.npz"),
            "--grid-out",
            str(out / "grid.png"),
        ),
    )
    wall += run(
        "evaluate_images",
        *p,
        *("--data", str(out / "split.npz"), "--samples", str(out / "samples.npz")),
        *("--out", str(out / "images.json"), "--details-out", str(out / "details" / "images.json")),
    )
    return (
        json.loads((out / "images.json").read_text()),
        json.loads((out / "details" / "images.json").read_text()),
        wall,
    )


def replicate_rows(results: list[tuple[dict, dict, float]]) -> list[harness.Row]:
    """One row per replicate (FD ratio and KID against the floor's p95, wall time), then the
    count of replicates with FD and KID both inside the band against the target (4 of 5)."""
    rows, inside = [], 0
    for r, (h, m, wall) in enumerate(results):
        both = bool(m["fd_inside_floor_band"] and m["kid_inside_floor_band"])
        inside += both
        rows.append(
            harness.Row(
                f"replicate {r}: FD ratio, KID (floor p95), wall",
                f"{h['fd_ratio']:.2f} ({h['fd_p95']:.2f}), {h['kid']:.3g} +- {h['kid_se']:.3g} ({h['kid_p95']:.3g}), "
                f"{wall:.0f} s",
                "both inside the band",
                both,
            )
        )
    n, need = len(results), -(-4 * len(results) // 5)  # >= 4 of 5
    walls = sorted(w for _, _, w in results)
    rows.append(
        harness.Row(
            "replicates with FD and KID inside the floor band",
            f"{inside} of {n} (wall {walls[0]:.0f}-{walls[-1]:.0f} s)",
            f">= {need} of {n}",
            inside >= need,
        )
    )
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", type=Path)
    ap.add_argument(
        "--metrics",
        type=Path,
        help="only read this headline metrics JSON (its details beside it in details/); run nothing",
    )
    ap.add_argument(
        "--replicates", type=int, default=1, help="run the branch for replicate 0..N-1 (default 1: the study itself)"
    )
    ap.add_argument("--write", type=Path, help="also write the rows as JSON (benchmarks/results/images.json)")
    args = ap.parse_args(argv)
    if args.metrics:
        details = args.metrics.parent / "details" / args.metrics.name
        report(json.loads(args.metrics.read_text()), json.loads(details.read_text()), None, args.write)
        return
    if args.replicates < 1:
        raise SystemExit(f"--replicates {args.replicates}: expected an integer >= 1")
    base = harness.read_params(args.params)  # read once: edits during the run do not leak in
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.replicates):
            out = Path(tmp) / f"replicate_{r}"
            out.mkdir()
            harness.write_params(out / "params.yaml", harness.override(base, {"replicate": r}))
            print(f"image branch, params {args.params} with replicate {r}, outputs in {out}")
            results.append(branch(out / "params.yaml", out))
    h, m, _ = results[0]
    wall = float(np.median([w for _, _, w in results]))  # the median over replicates: robust to a busy moment
    report(h, m, wall, args.write, replicate_rows(results) if args.replicates > 1 else None)


if __name__ == "__main__":
    main()
