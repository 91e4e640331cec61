"""Benchmark: the train_eq12 stage's wall time for each variant of a saved replicates file (the
runs `ddpm-lab compare --save` wrote), one replicate each, on this machine.

Each variant's params are the baseline's params.yaml with the variant's differing params set (the
Variant.params of ddpm_lab.tools.compare), replicate 0; the stage runs in a subprocess on the
committed data/gmm, its outputs in a temporary folder. The metrics hold no wall-clock time (the
same params give the same bytes), so the replicates tables take the cost of each variant from here.

    python benchmarks/bench_train_time.py benchmarks/replicates/eq12_candidates.json \
        [--write benchmarks/results/train_time.json]

--throughput instead measures the training step itself, in-process (no runs file): for each batch
size, regression target (train_eq12.target) and thread count, the mean wall time of a step of the
real loop (ddpm_lab.core.training.train on the committed data/gmm, params.yaml's model), the rows
per second, and the network's FLOP rate (a forward and backward pass, 3 x the forward's 2 i o per
row and Linear layer) against the rate of a plain chain of torch.mm of the same shapes, the
machine's floor for this network:

    python benchmarks/bench_train_time.py --throughput [--write benchmarks/results/train_throughput.json]
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

import yaml

from ddpm_lab.tools.compare import group, load_runs

ROOT = Path(__file__).resolve().parents[1]


def variant_params(base: dict, params: dict) -> dict:
    """base (params.yaml as loaded) with every flattened "section.key" of params set, replicate 0."""
    out = json.loads(json.dumps(base))
    for flat, value in params.items():
        section, _, key = flat.partition(".")
        if key:
            out[section][key] = list(value) if isinstance(value, tuple) else value
    out["replicate"] = 0
    return out


THROUGHPUT = {"batch_size": (512, 1024, 2048), "target": ("sampled", "stable"), "threads": (1, 2)}
THROUGHPUT_STEPS = 300  # timed steps per setting, after WARMUP_STEPS untimed ones
WARMUP_STEPS = 30


def linear_shapes(model) -> list[tuple[int, int]]:
    import torch

    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def mm_floor(shapes: list[tuple[int, int]], rows: int, reps: int = 200) -> float:
    """FLOP/s of a chain of torch.mm with the network's Linear shapes at `rows` rows (best of 3)."""
    import torch

    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(rows, i, generator=g), torch.randn(i, o, generator=g)) for i, o in shapes]
    flops = sum(2 * rows * i * o for i, o in shapes)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            for a, w in pairs:
                torch.mm(a, w)
        best = min(best, (time.perf_counter() - t0) / reps)
    return flops / best


def throughput(write: Path | None) -> None:
    import dataclasses

    import numpy as np
    import torch

    from ddpm_lab.core.training import objective_loss, train
    from ddpm_lab.gmm.model import EpsMLP
    from ddpm_lab.gmm.params import read
    from ddpm_lab.runtime.torch_setup import keep_freed_memory

    keep_freed_memory()  # as stages/train.py does
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = torch.as_tensor(np.load(ROOT / "data/gmm/train.npy"), dtype=torch.float32)
    diffusion = read(base, "diffusion").build()
    mcfg = read(base, "model", data_dim=data.shape[1])
    shapes = linear_shapes(EpsMLP.seeded(mcfg, 0))
    per_row = 3 * sum(2 * i * o for i, o in shapes)  # forward + backward (about twice the forward)
    torch.use_deterministic_algorithms(True)
    rows = []
    for threads in THROUGHPUT["threads"]:
        torch.set_num_threads(threads)
        for batch in THROUGHPUT["batch_size"]:
            floor = mm_floor(shapes, batch)
            for target in THROUGHPUT["target"]:
                tcfg = dataclasses.replace(
                    read(base, "train_eq12"),
                    batch_size=batch,
                    target=target,
                    steps=WARMUP_STEPS + THROUGHPUT_STEPS,
                    warmup=0,
                    threads=threads,
                )
                loss_fn = objective_loss(diffusion, tcfg, mcfg.prediction)
                stamps = []

                def progress(steps, stamps=stamps):
                    for step in steps:
                        if step >= WARMUP_STEPS:
                            stamps.append(time.perf_counter())
                        yield step

                train(EpsMLP.seeded(mcfg, 0), loss_fn, data, tcfg, progress=progress)
                step_s = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
                rate = batch / step_s
                what = f"train step, batch {batch}, target {target}, {threads} thread{'s' if threads > 1 else ''}"
                measured = (
                    f"{step_s * 1e3:.2f} ms = {rate / 1e3:.0f}k rows/s; network {rate * per_row / 1e9:.1f} GFLOP/s "
                    f"of the mm floor {floor / 1e9:.1f}"
                )
                rows.append({"what": what, "measured": measured, "target": "", "met": None})
                print(f"{what}: {measured}", flush=True)
    if write:
        doc = {"benchmark": "train_throughput", "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}
        write.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {write}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="?", help="a replicates file saved by `ddpm-lab compare --save`")
    ap.add_argument("--throughput", action="store_true", help="time the training step instead (no runs file)")
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/train_time.json)")
    args = ap.parse_args(argv)
    if args.throughput:
        throughput(args.write)
        return
    if args.runs is None:
        ap.error("a runs file is needed (or --throughput)")
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_time_") as tmp:
        for i, v in enumerate(group(load_runs(args.runs))):
            params = Path(tmp) / f"params_{i}.yaml"
            params.write_text(yaml.safe_dump(variant_params(base, v.params), sort_keys=False))
            out = Path(tmp) / f"v{i}"
            cmd = [sys.executable, "-m", "stages.train", "--objective", "eq12", "--params", str(params)]
            cmd += ["--model-out", str(out / "eq12.pt"), "--metrics-out", str(out / "train.json")]
            cmd += ["--eps-error-out", str(out / "eps.csv"), "--history-out", str(out / "loss.csv")]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            seconds = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(
                    f"{v.name}: train_eq12 exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1]}"
                )
            rows.append(
                {
                    "what": f"train_eq12 stage, {v.name}",
                    "measured": f"{seconds:.1f} s",
                    "target": "<= 20 s",
                    "met": seconds <= 20,
                    "variant": v.name,
                    "seconds": round(seconds, 1),
                }
            )
            print(f"{v.name}: {seconds:.1f} s", flush=True)
    if args.write:
        doc = {"benchmark": "train_time", "cpus": os.cpu_count(), "runs": str(args.runs), "rows": rows}
        args.write.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
