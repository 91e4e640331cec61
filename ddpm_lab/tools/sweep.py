"""`ddpm-lab sweep FILE`: the runs of a sweep file (variants x replicates) as jobs of a cluster
scheduler (Slurm through submitit; its local executor runs the same jobs as local processes), each
one `dvc exp run` in its own clone, its result pushed to the shared git and DVC remotes; then
`--status` and `--gather` (pull the finished runs, compare them).

The sweep file (YAML; docs/sweeps.md):

    repo: /shared/ddpm-lab.git   # the git remote every job clones and `dvc exp push`es to; its DVC
                                 # remote is the default remote of the repository's .dvc/config
    rev: main                    # the commit (or branch) every job runs
    target: compare_dist         # the stage `dvc exp run` runs to
    replicates: [0, 1, 2, 3, 4]  # each variant once per replicate (params `replicate`)
    variants:                    # dotted params -> values; {} is the baseline
      - {}
      - {train_eq12.t_sampling: importance}
    resources: {partition: null, time_min: 60, cpus: 2, mem_gb: 8}

A run is named `<name>-<8 hex of its variant>-r<replicate>`, so a resubmitted sweep skips every
run already on the git remote (`refs/exps/.../<run name>`): the push of a finished experiment is
the commit point, and a job killed before it leaves nothing there. cpus sets every `threads`
param of params.yaml (the bytes of a run depend on its thread counts; they are recorded as params).
A job that fails raises one line naming the run and the last line dvc printed; --status shows it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ddpm_lab.runtime.params import ConfigError, DataError

EXECUTORS = ("slurm", "local")


@dataclass(frozen=True)
class Resources:
    partition: str | None = None
    time_min: int = 60
    cpus: int = 2
    mem_gb: float = 8.0


@dataclass(frozen=True)
class Sweep:
    repo: str
    rev: str
    variants: list
    replicates: list
    target: str = "compare_dist"
    name: str = "sweep"
    resources: Resources = field(default_factory=Resources)

    def runs(self) -> list[dict]:
        """Every run: its name, variant (dotted params -> value) and replicate."""
        out = []
        for variant in self.variants:
            tag = hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]
            for r in self.replicates:
                out.append({"name": f"{self.name}-{tag}-r{r}", "variant": dict(variant), "replicate": r})
        return out


def read_sweep(path: Path) -> Sweep:
    """The sweep file, checked: one line naming the key, the value and what was expected."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such sweep file") from None
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of repo, rev, target, replicates, variants, resources")
    known = {"repo", "rev", "target", "replicates", "variants", "resources", "name"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: {key} is not a known key: expected one of {', '.join(sorted(known))}")
    for key in ("repo", "rev", "variants", "replicates"):
        if key not in raw:
            raise ConfigError(f"{path}: {key} is missing")
    variants, reps = raw["variants"], raw["replicates"]
    if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(
            f"{path}: variants = {variants!r}: expected a non-empty list of mappings (dotted param: value)"
        )
    if not isinstance(reps, list) or not reps or not all(isinstance(r, int) and r >= 0 for r in reps):
        raise ConfigError(f"{path}: replicates = {reps!r}: expected a non-empty list of integers >= 0")
    res = raw.get("resources") or {}
    try:
        resources = Resources(**res)
    except TypeError:
        raise ConfigError(
            f"{path}: resources = {res!r}: expected keys among partition, time_min, cpus, mem_gb"
        ) from None
    if not isinstance(resources.cpus, int) or resources.cpus < 1:
        raise ConfigError(f"{path}: resources.cpus = {resources.cpus!r}: expected an integer >= 1")
    name = str(raw.get("name", "sweep"))
    return Sweep(
        str(raw["repo"]), str(raw["rev"]), variants, reps, str(raw.get("target", "compare_dist")), name, resources
    )


def run_job(repo: str, rev: str, run: dict, target: str, cpus: int, workdir: str, status_dir: str) -> str:
    """One run, in a job: clone repo at rev into workdir, `dvc exp run -n NAME` with the variant,
    the replicate and cpus threads, then `dvc exp push` to the git remote (and the DVC remote).
    Its state goes to status_dir/NAME.json (RUNNING, then FINISHED or FAILED with one line).
    Returns the run's name; raises RuntimeError with that line if a step fails."""
    state = Path(status_dir) / f"{run['name']}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"state": "RUNNING", "reason": ""}))
    try:
        _run(repo, rev, run, target, cpus, Path(workdir))
    except Exception as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        state.write_text(json.dumps({"state": "FAILED", "reason": reason}))
        raise RuntimeError(reason) from None
    state.write_text(json.dumps({"state": "FINISHED", "reason": ""}))
    return run["name"]


def _run(repo: str, rev: str, run: dict, target: str, cpus: int, work: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}

    def sh(*cmd: str, cwd: Path | None = work) -> str:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
            error = next((line for line in lines if line.startswith(("error:", "ERROR:"))), lines[-1])
            raise RuntimeError(f"{run['name']}: `{' '.join(cmd[:3])}` failed: {error.strip()}")
        return proc.stdout

    if work.exists():
        shutil.rmtree(work)  # a killed job's clone: start over (nothing of it was pushed)
    sh("git", "clone", "-q", repo, str(work), cwd=None)
    sh("git", "checkout", "-q", rev)
    params = yaml.safe_load((work / "params.yaml").read_text())
    threads = [f"{s}.threads={cpus}" for s, v in params.items() if isinstance(v, dict) and "threads" in v]
    sets = [f"{k}={json.dumps(v)}" for k, v in run["variant"].items()] + [f"replicate={run['replicate']}"]
    args = [a for s in sets + threads for a in ("-S", s)]
    sh("dvc", "exp", "run", "-n", run["name"], *args, target)
    sh("dvc", "exp", "push", "origin", run["name"])


def pushed(repo: str) -> set[str]:
    """The experiment names on the git remote (refs/exps/<..>/<..>/<name>)."""
    proc = subprocess.run(["git", "ls-remote", repo, "refs/exps/*"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DataError(f"{repo}: git ls-remote failed: {proc.stderr.strip().splitlines()[-1:]}")
    return {line.rsplit("/", 1)[-1] for line in proc.stdout.splitlines() if line.strip()}


def executor(kind: str, folder: Path, resources: Resources, name: str):
    """submitit's SlurmExecutor with the sweep's resources (sbatch --partition, --time, --cpus-per-task,
    --mem, --job-name), or its LocalExecutor (local processes; only the time limit applies)."""
    import submitit

    if kind == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=resources.time_min)
        return ex
    ex = submitit.SlurmExecutor(folder=folder)
    params = dict(time=resources.time_min, cpus_per_task=resources.cpus, mem=f"{resources.mem_gb:g}GB", job_name=name)
    if resources.partition:
        params["partition"] = resources.partition
    ex.update_parameters(**params)
    return ex


def submit(sweep: Sweep, folder: Path, kind: str) -> list[tuple[str, object]]:
    """Submit every run not already on the git remote; the jobs are kept in folder/jobs.pkl."""
    done, runs = pushed(sweep.repo), sweep.runs()
    todo = [r for r in runs if r["name"] not in done]
    print(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already on {sweep.repo}, {len(todo)} to submit")
    ex = executor(kind, folder / "logs", sweep.resources, sweep.name)
    jobs = []
    for r in todo:
        work, state = str(folder / "work" / r["name"]), str(folder / "status")
        job = ex.submit(run_job, sweep.repo, sweep.rev, r, sweep.target, sweep.resources.cpus, work, state)
        jobs.append((r["name"], job))
        print(f"sweep: {r['name']} ({r['variant'] or 'baseline'}, replicate {r['replicate']}): job {job.job_id}")
    (folder / "jobs.pkl").write_bytes(pickle.dumps(jobs))
    return jobs


def status(sweep: Sweep, folder: Path) -> list[tuple[str, str, str]]:
    """(run name, state, reason) of every run of the sweep: ON REMOTE (pushed, by this sweep or an
    earlier one), RUNNING, FINISHED or FAILED (with its one-line reason) as the job wrote them,
    SUBMITTED (not started), or NOT SUBMITTED."""
    on_remote = pushed(sweep.repo)
    submitted = (
        {name for name, _ in pickle.loads((folder / "jobs.pkl").read_bytes())}
        if (folder / "jobs.pkl").exists()
        else set()
    )
    out = []
    for r in sweep.runs():
        path = folder / "status" / f"{r['name']}.json"
        if path.exists():
            info = json.loads(path.read_text())
            out.append((r["name"], info["state"], info["reason"]))
        elif r["name"] in on_remote:
            out.append((r["name"], "ON REMOTE", ""))
        else:
            out.append((r["name"], "SUBMITTED" if r["name"] in submitted else "NOT SUBMITTED", ""))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="ddpm-lab sweep", description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path, help="the sweep file (YAML: repo, rev, target, replicates, variants, resources)")
    ap.add_argument("--executor", choices=EXECUTORS, default="slurm", help="slurm (default) or local processes")
    ap.add_argument("--folder", type=Path, help="where jobs, logs and clones go (default: sweeps/<name>)")
    ap.add_argument("--status", action="store_true", help="list each job's state (and a failed job's reason)")
    ap.add_argument(
        "--wait",
        action="store_true",
        help="after submitting, wait for every job to end (needed with --executor local: its jobs end with this command)",
    )
    ap.add_argument(
        "--gather",
        action="store_true",
        help="`dvc exp pull` the sweep's runs on the remote into this repository, then `ddpm-lab compare --rev REV`",
    )
    args = ap.parse_args(argv)
    sweep = read_sweep(args.file)
    folder = args.folder or Path("sweeps") / sweep.name
    folder.mkdir(parents=True, exist_ok=True)
    if args.status:
        for name, state, reason in status(sweep, folder):
            print(f"{name:32s} {state:13s} {reason}")
        return
    if args.gather:
        gather(sweep)
        return
    jobs = submit(sweep, folder, args.executor)
    if args.wait:
        failed = 0
        for name, job in jobs:
            try:
                job.result()
            except Exception as e:  # noqa: BLE001  the job's own error, reported in one line
                failed += 1
                state = folder / "status" / f"{name}.json"  # the job's one line; else submitit's last
                reason = json.loads(state.read_text())["reason"] if state.exists() else str(e).strip().splitlines()[-1]
                print(f"sweep: {name}: FAILED: {reason}")
        print(f"sweep: {len(jobs) - failed} of {len(jobs)} jobs finished, {failed} failed")


def gather(sweep: Sweep) -> None:
    """Pull the sweep's runs that are on the git remote (their refs, and their outputs from the
    DVC remote) into this repository, then compare the experiments of rev."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    on_remote = pushed(sweep.repo)
    names = [r["name"] for r in sweep.runs() if r["name"] in on_remote]
    print(f"sweep: pulling {len(names)} of {len(sweep.runs())} runs from {sweep.repo}")
    for name in names:
        subprocess.run(["dvc", "exp", "pull", sweep.repo, name], env=env, check=True, capture_output=True)
    rev = subprocess.run(["git", "rev-parse", sweep.rev], capture_output=True, text=True, check=True).stdout.strip()
    from ddpm_lab.tools import compare

    compare.main(["--rev", rev])


if __name__ == "__main__":
    from ddpm_lab.runtime.cli import run_stage

    run_stage(main)
