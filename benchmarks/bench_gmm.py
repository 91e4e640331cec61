"""Benchmark of the GMM branch: speed and quality targets, printed (not a test).

Runs the real pipeline on the default params.yaml in a temporary clean copy of the
repository, one stage at a time (`dvc repro -s`), timing each; then times Algorithm 2 alone
(10,000 samples x T steps with the trained eq12 model) and prints the quality figures of
metrics/dist_*.json against the targets of issue 2.

    .venv/bin/python benchmarks/bench_gmm.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["generate_gmm", "train_eq12", "train_eq3", "sample", "compare_dist", "plot"]


def clean_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for rel in filter(None, files.split("\0")):
        if rel.startswith(("metrics/", "images/")) or rel == "dvc.lock":
            continue  # outputs of the pipeline: the copy starts without them, like a fresh run
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="run in this directory and keep it (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_gmm_"))
    work.mkdir(parents=True, exist_ok=True)
    clean_copy(work)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1"}

    times = {}
    for stage in STAGES:
        t0 = time.perf_counter()
        subprocess.run([f"{bin_dir}/dvc", "repro", "-s", stage], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[stage] = time.perf_counter() - t0
    total = sum(times.values())

    # Algorithm 2 alone, in this process: 10,000 draws x T steps with the trained eq12 model.
    sys.path.insert(0, str(work))
    import torch

    from ddpm_lab.config import DiffusionConfig, from_section
    from ddpm_lab.io import load_params
    from ddpm_lab.sampling import sample
    from stages.common import load_eps_model

    dcfg = from_section(DiffusionConfig, load_params(work / "params.yaml"), "diffusion")
    model = load_eps_model(work / "models" / "eq12.pt", dcfg)
    diffusion = dcfg.build()
    t0 = time.perf_counter()
    sample(diffusion, model, (10_000, model.config.data_dim), torch.Generator().manual_seed(0))
    t_sample = time.perf_counter() - t0

    m = {name: json.loads((work / "metrics" / f"dist_{name}.json").read_text()) for name in ("eq12", "eq3", "oracle")}
    tr = {name: json.loads((work / "metrics" / f"train_{name}.json").read_text()) for name in ("eq12", "eq3")}
    params = load_params(work / "params.yaml")

    def row(label, value, target="", ok=None):
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {label:<48} {value:<28} {target}{mark}")

    print(f"GMM branch benchmark ({os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print("Speed")
    for stage in STAGES:
        row(f"dvc repro -s {stage}", f"{times[stage]:.1f} s")
    row("whole GMM branch from a clean copy", f"{total:.1f} s", "target <= 120 s", total <= 120)
    row("train_eq12 stage (incl. start-up, floor)", f"{times['train_eq12']:.1f} s", "target <= 20 s",
        times["train_eq12"] <= 20)
    row(f"Algorithm 2: 10,000 x {dcfg.T} steps, eq12 model", f"{t_sample:.1f} s", "target <= 6 s", t_sample <= 6)
    print(f"Quality (n = {m['eq12']['n']:,} per seed, median over {m['eq12']['n_seeds']} seeds)")
    for name in ("eq12", "eq3", "oracle"):
        d = m[name]
        print(f"  [{name}]")
        row("W1 / noise floor", f"{d['w1_ratio']:.3f} (W1 {d['w1']:.4f})", "eq12 target <= 1.3" if name == "eq12" else "",
            d["w1_ratio"] <= 1.3 if name == "eq12" else None)
        row("KS / noise floor", f"{d['ks_ratio']:.3f} (KS {d['ks']:.4f})")
        row("max |mode weight - w_k|", f"{d['mode_weight_max_abs_err']:.4f}", "eq12 target <= 0.01" if name == "eq12" else "",
            d["mode_weight_max_abs_err"] <= 0.01 if name == "eq12" else None)
        row("held-out NLL bound (nats)", f"{d['nll_bound']:.4f} +- {d['nll_bound_se']:.4f}")
        row("  minus the oracle's (paired)", f"{d['nll_gap_to_oracle']:+.4f} +- {d['nll_gap_to_oracle_se']:.4f}",
            "eq12 target <= 0.02" if name == "eq12" else "", d["nll_gap_to_oracle"] <= 0.02 if name == "eq12" else None)
    print(f"  exact entropy H = {m['eq12']['entropy']:.4f} nats; oracle bound {m['oracle']['oracle_nll_bound']:.4f}")
    print("Training budgets (eq12 vs eq3)")
    T = dcfg.T
    for name in ("eq12", "eq3"):
        p = params[f"train_{name}"]
        evals = p["steps"] * p["batch_size"] * (T if name == "eq3" else 1)
        row(f"{name}: steps x batch", f"{p['steps']} x {p['batch_size']}",
            f"{evals:,} network evaluations, stage {times[f'train_{name}']:.1f} s")
        row(f"{name}: final loss / floor", f"{tr[name]['final_loss']:.4f} / {tr[name]['loss_floor']:.4f}",
            tr[name]["units"])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
