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
import os
import subprocess
import tempfile
import time
from pathlib import Path

from ddpm_lab.tools.compare import group, load_runs

if __package__:  # python -m benchmarks.bench_train_time
    from . import harness
else:  # python benchmarks/bench_train_time.py: its folder, benchmarks/, comes first on the import path
    import harness


def variant_params(base: dict, params: dict) -> dict:
    """base (params.yaml as loaded) with every flattened "section.key" of params set, replicate 0."""
    return harness.override(base, {**{k: v for k, v in params.items() if "." in k}, "replicate": 0})


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
    base = harness.read_params()
    data = torch.as_tensor(np.load(harness.ROOT / "data/gmm/train.npy"), dtype=torch.float32)
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
                rows.append(harness.Row(what, measured))
                print(f"{what}: {measured}", flush=True)
    if write:
        doc = {"benchmark": "train_throughput", "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}
        harness.write_results(write, doc, indent=1)
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
    base = harness.read_params()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_time_") as tmp:
        for i, v in enumerate(group(load_runs(args.runs))):
            params = harness.write_params(Path(tmp) / f"params_{i}.yaml", variant_params(base, v.params))
            out = Path(tmp) / f"v{i}"
            done = harness.run_stage(
                "train",
                *("--objective", "eq12", "--params", str(params), "--model-out", str(out / "eq12.pt")),
                *("--metrics-out", str(out / "train.json"), "--eps-error-out", str(out / "eps.csv")),
                *("--history-out", str(out / "loss.csv")),
                stdout=subprocess.DEVNULL,
            )
            seconds = done.seconds
            if not done.ok:
                raise SystemExit(f"{v.name}: train_eq12 exited {done.proc.returncode}: {done.error(limit=None)}")
            rows.append(
                harness.Row(
                    f"train_eq12 stage, {v.name}",
                    f"{seconds:.1f} s",
                    "<= 20 s",
                    seconds <= 20,
                    variant=v.name,
                    seconds=round(seconds, 1),
                )
            )
            print(f"{v.name}: {seconds:.1f} s", flush=True)
    if args.write:
        doc = {"benchmark": "train_time", "cpus": os.cpu_count(), "runs": str(args.runs), "rows": rows}
        harness.write_results(args.write, doc, indent=1)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
