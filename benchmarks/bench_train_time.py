"""Benchmark: the train_eq12 stage's wall time for each variant of a saved replicates file (the
runs `ddpm-lab compare --save` wrote), one replicate each, on this machine.

Each variant's params are the baseline's params.yaml with the variant's differing params set (the
Variant.params of ddpm_lab.tools.compare), replicate 0; the stage runs in a subprocess on the
committed data/gmm, its outputs in a temporary folder. The metrics hold no wall-clock time (the
same params give the same bytes), so the replicates tables take the cost of each variant from here.

    python benchmarks/bench_train_time.py benchmarks/replicates/eq12_candidates.json \
        [--write benchmarks/results/train_time.json]
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="a replicates file saved by `ddpm-lab compare --save`")
    ap.add_argument("--write", type=Path, help="keep the rows here (benchmarks/results/train_time.json)")
    args = ap.parse_args(argv)
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
