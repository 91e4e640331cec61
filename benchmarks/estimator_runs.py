"""The runs of benchmarks/bench_estimators.py: one Eq. 3 estimator configuration trained for a
planned budget by the real train_eq3 stage in a clean copy of the study, its optimiser step timed
in this process, and its sampled distribution judged by the sample and compare_dist stages."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field

if __package__:  # benchmarks.estimator_runs, as python -m benchmarks.bench_estimators imports it
    from . import harness
else:  # estimator_runs, as python benchmarks/bench_estimators.py imports it (its folder first on the import path)
    import harness

SAFETY = 0.95  # plan each run at 95% of its budget
MAX_STEPS = 50_000
TWO_THREADS_GAIN = 1.25  # two torch threads only when they measure 1.25x faster: on a busy 2-core machine
# two threads can be 10x slower than one
TIMEOUT_FACTOR = 3  # a training run past 3x its budget is killed and reported so (shared machine)
ONE_THREAD = {"sample.threads": 1, "compare_dist.threads": 1}  # two threads on a busy 2-core machine: many times slower
SAMPLED = ("w1_ratio", "w1_p95", "ks_ratio", "ks_p95", "mode_err", "mode_p95", "bound_gap")  # kept of dist_eq3.json


@dataclass
class Run:
    estimator: str
    K: int
    term: str | None
    batch: int
    threads: int
    step_s: float  # measured wall time per optimiser step (this process)
    budget: float  # x W planned
    steps: int = 0
    warmup: int = 0
    evals_per_step: int = 0
    wall_s: float | None = None  # the stage's real wall time
    gap: float | None = None  # exact expected-bound gap of the saved model to the oracle (nats)
    gap_err: float | None = None
    final_loss: float | None = None
    error: str | None = None  # the stage's one-line error (a diverged run, say)
    command: str = ""
    sampled: dict = field(default_factory=dict)
    sample_command: str = ""

    @property
    def label(self) -> str:
        if self.estimator != "subsampled":
            return self.estimator
        return f"subsampled K={self.K} {self.term}"

    @property
    def name(self) -> str:
        return f"{self.estimator}_K{self.K}_{self.term or 'all'}_x{self.budget:g}"

    def overrides(self) -> dict:
        """Its train_eq3 params, as "train_eq3.key": value."""
        u = {"estimator": self.estimator, "terms_per_trajectory": self.K}
        if self.estimator == "subsampled":
            u["term"] = self.term
        u.update(batch_size=self.batch, steps=self.steps, warmup=self.warmup, threads=self.threads)
        return {f"train_eq3.{k}": v for k, v in u.items()}

    def gap_text(self) -> str:
        if self.gap is None:
            return f"failed: {self.error}"
        return f"{self.gap:.5f} +- {self.gap_err:.0e}"


class Bench:
    """The clean copy the runs train in: its params.yaml is the study's with base (the --quick
    params, "section.key": value) set; each run's params and outputs go to runs/<name>/."""

    def __init__(self, study: harness.Study, base: dict):
        self.study, self.work, self.base = study, study.path, base
        self.params = study.set_params(base)
        (self.work / "runs").mkdir(exist_ok=True)

    def train_eq3(self, run: Run, name: str | None = None, timeout: float | None = None) -> None:
        """The real train_eq3 stage with run's params, its outputs in runs/<name>/ (killed past timeout)."""
        out = self.work / "runs" / (name or run.name)
        updates = run.overrides()
        harness.write_params(out / "params.yaml", harness.override(self.params, updates))
        run.command = harness.dvc_command({**self.base, **updates}, "train_eq3")
        done = self.study.run(
            "train",
            *("--objective", "eq3", "--data", "data/gmm", "--model-out", str(out / "eq3.pt")),
            *("--metrics-out", str(out / "train_eq3.json"), "--eps-error-out", str(out / "eps_error_eq3.csv")),
            *("--history-out", str(out / "loss_eq3.csv")),
            params=out / "params.yaml",
            timeout=timeout,
        )
        run.wall_s = done.seconds
        if not done.ok:
            run.error = done.error()
            return
        m = json.loads((out / "train_eq3.json").read_text())
        run.gap, run.gap_err, run.final_loss = (
            m["saved_model_excess_loss"],
            m["saved_model_excess_loss_err"],
            m["final_loss"],
        )

    def reference(self) -> dict:
        """The data, then train_eq12 with the copy's params: its wall time W and its exact gap."""
        self.study.check("generate_gmm", "--out", "data/gmm")
        W = self.study.check("train", "--objective", "eq12", "--data", "data/gmm")
        m12 = json.loads((self.work / "metrics" / "details" / "train_eq12.json").read_text())
        p12 = self.params["train_eq12"]
        eq12 = {
            "gap": m12["saved_model_excess_loss"],
            "gap_err": m12["saved_model_excess_loss_err"],
            "wall_s": W,
            "steps": p12["steps"],
            "batch": p12["batch_size"],
            "threads": p12["threads"],
            "command": harness.dvc_command(self.base, "train_eq12"),
        }
        print(f"train_eq12 (default params): W = {W:.1f} s, exact gap {eq12['gap']:.5f} nats", flush=True)
        return eq12

    def train_all(self, configs, budgets, W: float, overhead: float, quick: bool) -> list[Run]:
        """Each (estimator, K, term) at each budget (x W), its steps planned from its step time measured
        here (then from the stage's own rate) and the stage's fixed cost `overhead`."""
        T, p12 = self.params["diffusion"]["T"], self.params["train_eq12"]
        runs: list[Run] = []
        for estimator, K, term in configs:
            K = min(K, T)
            batch = (
                self.params["train_eq3"]["batch_size"]
                if estimator != "subsampled"
                else max(1, round(p12["batch_size"] / K))
            )
            per = {
                th: self.step_time(th, estimator=estimator, terms_per_trajectory=K, term=term or "kl", batch_size=batch)
                for th in (1, 2)
            }
            threads = 2 if per[2] * TWO_THREADS_GAIN < per[1] else 1
            rate = per[threads]
            print(
                f"{estimator} K={K} {term or ''} batch {batch}: {per[1] * 1e3:.1f} ms/step at 1 thread, "
                f"{per[2] * 1e3:.1f} ms at 2: {threads} thread{'s' if threads > 1 else ''}",
                flush=True,
            )
            for k in budgets:
                steps = int(max(2 if quick else 10, min(MAX_STEPS, (SAFETY * k * W - overhead) / rate)))
                evals = batch * (T if estimator != "subsampled" else K)
                run = Run(
                    estimator, K, term, batch, threads, per[threads], k, steps, min(round(0.1 * steps), 100), evals
                )
                self.train_eq3(run, timeout=max(60.0, TIMEOUT_FACTOR * k * W))
                runs.append(run)
                print(
                    f"  {k}x W: {steps} steps, {run.wall_s:.1f} s ({run.wall_s / W:.2f} W), gap {run.gap_text()}",
                    flush=True,
                )
                if run.error is None and run.wall_s - overhead > 1.0:
                    # the stage's own rate plans the next budget, within a factor 2 of the one measured here
                    # (the machine is shared: one run's load is not the next's)
                    rate = min(2 * per[threads], max(per[threads] / 2, (run.wall_s - overhead) / steps))
        return runs

    def sample_runs(self, runs: list[Run], top: float, how: str) -> dict | None:
        """The sampled distribution of the runs at budget `top`: of the best ("best"), of all ("all") or
        of none; returns the Eq. 12 model's sampled figures (None when none ran)."""
        at_top = [r for r in runs if r.budget == top and r.gap is not None]
        chosen = [] if how == "none" or not at_top else (at_top if how == "all" else [min(at_top, key=lambda r: r.gap)])
        dist12 = None
        for run in chosen:
            t0 = time.perf_counter()
            dist12 = self.sample(run)
            d3 = run.sampled
            print(
                f"  sampled {run.label} ({top:g}x W): W1 x{d3['w1_ratio']:.2f}, KS x{d3['ks_ratio']:.2f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        return dist12

    def sample(self, run: Run) -> dict:
        """run's saved model through the sample and compare_dist stages (one torch thread each), as
        models/eq3.pt: keeps its sampled figures in run.sampled; returns the Eq. 12 model's."""
        src = self.work / "runs" / run.name
        shutil.copy2(src / "eq3.pt", self.work / "models" / "eq3.pt")
        shutil.copy2(src / "eps_error_eq3.csv", self.work / "metrics" / "details" / "eps_error_eq3.csv")
        params = harness.write_params(src / "params_sample.yaml", harness.override(self.params, ONE_THREAD))
        run.sample_command = harness.dvc_command({**self.base, **ONE_THREAD, **run.overrides()}, "compare_dist")
        self.study.check("sample", "--models", "models", "--data", "data/gmm", "--out", "data/samples", params=params)
        self.study.check(
            "compare_dist",
            *("--models", "models", "--data", "data/gmm", "--samples", "data/samples", "--out", "metrics"),
            params=params,
        )
        d3 = json.loads((self.work / "metrics" / "dist_eq3.json").read_text())
        run.sampled = {k: d3[k] for k in SAMPLED}
        return json.loads((self.work / "metrics" / "dist_eq12.json").read_text())

    def step_time(self, threads: int, **overrides) -> float:
        """Seconds per optimiser step of the train_eq3 stage's own loop (ddpm_lab.core.training.train with
        the loss the stage builds), measured in this process; overrides: keys of section train_eq3."""
        import numpy as np
        import torch

        from ddpm_lab.core.diffusion import DiffusionConfig
        from ddpm_lab.core.training import Eq3TrainConfig, objective_loss, train
        from ddpm_lab.gmm.model import EpsMLP, MLPConfig
        from ddpm_lab.runtime.params import from_section

        diffusion = from_section(DiffusionConfig, self.params, "diffusion").build()
        data = torch.as_tensor(np.load(self.work / "data" / "gmm" / "train.npy"), dtype=torch.float32)
        mcfg = from_section(MLPConfig, self.params, "model", data_dim=data.shape[1])
        section = {**self.params["train_eq3"], **overrides, "threads": threads}
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        loss_fn = objective_loss(diffusion, Eq3TrainConfig(**{**section, "warmup": 0}))  # the stage's own objective

        def timed(steps: int) -> float:
            cfg = Eq3TrainConfig(**{**section, "steps": steps, "warmup": 0})
            t0 = time.perf_counter()
            train(EpsMLP.seeded(mcfg, 0), loss_fn, data, cfg)
            return (time.perf_counter() - t0) / steps

        try:
            first = timed(2)  # warms up (allocations, first calls)
            n = max(3, min(30, round(0.6 / max(first, 1e-4))))
            return min(timed(n), first)
        finally:
            torch.set_num_threads(before)
