"""Data-parallel training over several processes: torch.distributed with DistributedDataParallel
(DDP), launched the way `torchrun --standalone --nproc_per_node N` launches, but in-process.

How the global batch stays the one of a single process (what makes nproc a speed knob only):
every rank holds the same seeded generator and draws the whole global batch (its rows, t and
eps) from it, then evaluates only its shard of rows (World.shard). DDP averages the shards'
gradients, so the update is the single-process update up to the order of float sums; the loss
logged is the ranks' average (World.mean), the global batch's mean. Every rank keeps the same
weights, Adam moments, EMA and generator state; rank 0 alone writes files.

A rank that dies (killed, out of memory) makes the others fail at their next collective; they
exit with EXIT_PEER_LOST without a traceback, and `launch` raises RankFailed naming the rank
that failed first, so the stage prints one line.

The protocol of a stage that launches itself as ranks: the process started by hand checks its
inputs and calls `launch_ranks` (python -m the stage's module again, as nproc ranks); each rank
runs its work inside `rank_run`, which joins and leaves the process group and turns the rank's
failures into the exit statuses `launch_ranks` reads (bad input and a requested stop are said
by rank 0; a lost peer is not a cause).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import torch

from ddpm_lab.runtime.cli import EXIT_BAD_INPUT
from ddpm_lab.runtime.params import ConfigError, DataError

BACKENDS = ("auto", "gloo", "nccl")
NPROC_MAX = 256
EXIT_PEER_LOST = 4  # a rank whose peer died: not the cause, so launch reports another rank
EXIT_STOPPED = 3  # a run stopped on request after a checkpoint (a stage's --stop-at): rank 0 said so
COLLECTIVE_TIMEOUT = timedelta(minutes=10)  # a rank that hangs (not dies) fails the others after this


class Stopped(Exception):
    """Raised by a rank after the checkpoint it was asked to stop at has been written; str() is
    the line rank 0 prints (rank_run turns it into exit status EXIT_STOPPED)."""


class RankFailed(Exception):
    """A rank of a multi-process run exited non-zero; str() is the one line to print."""

    def __init__(self, line: str, exitcode: int):
        super().__init__(line)
        self.exitcode = exitcode


@dataclass(frozen=True)
class World:
    """This process's place among `size` processes (rank 0 writes). World() is one process:
    no sharding, no reduction, the model unwrapped (what training uses by default)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of n rows (n a multiple of size)."""
        if n % self.size:
            raise ValueError(f"a batch of {n} rows does not split over {self.size} processes")
        per = n // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The average of x over the ranks (x itself in one process)."""
        if self.size == 1:
            return x
        total = x.detach().clone()
        torch.distributed.all_reduce(total)  # SUM: the one op every backend has
        return total / self.size

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to call in training: DDP around model (gradients averaged over the ranks
        in backward), or model itself in one process."""
        if self.size == 1:
            return model
        cuda = next(model.parameters()).device.type == "cuda"
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.local_rank] if cuda else None)

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()


def resolve_backend(backend: str, device: torch.device) -> str:
    """'auto' -> nccl on CUDA, gloo on CPU. nccl needs CUDA (a ConfigError naming the key)."""
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(
            f"images_train.backend = 'nccl': expected a CUDA device (running on {device.type}); use gloo or auto"
        )
    return backend


def launched_world(nproc: int) -> World | None:
    """The World of a process that a launcher started (WORLD_SIZE, RANK, LOCAL_RANK set, as
    torchrun and `launch` set them), or None for a process started by hand."""
    if "WORLD_SIZE" not in os.environ:
        return None
    size = int(os.environ["WORLD_SIZE"])
    if size != nproc:
        raise ConfigError(
            f"images_train.nproc = {nproc}: expected the launcher's WORLD_SIZE = {size} "
            f"(set nproc to it, or let the stage launch itself)"
        )
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", 0)))


def join(world: World, backend: str) -> None:
    """Join the process group of a launched rank; a SIGTERM (the launcher stopping this rank after
    another failed) then ends it like Ctrl-C, so files being written are removed, not left half."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    torch.distributed.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)


def leave() -> None:
    """Leave the process group (if joined). A SIGTERM from here on ends the process silently (the
    default action), not as an exception raised inside the interpreter's shutdown."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def peer_lost(error: BaseException) -> bool:
    """Whether an exception is a collective failing because another rank is gone."""
    return isinstance(error, torch.distributed.DistError) or (
        isinstance(error, RuntimeError)
        and any(s in str(error) for s in ("Connection closed by peer", "Connection reset by peer", "gloo", "NCCL"))
    )


def launch(nproc: int, module: str, argv: list[str]) -> None:
    """Run `python -m module *argv` as nproc ranks on this machine, like `torchrun --standalone
    --nproc_per_node nproc -m module *argv` (torch.distributed's elastic launcher, no restarts).
    Returns when all ranks succeeded; raises RankFailed naming the rank that failed first."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its failure report is many lines; RankFailed is one
    try:
        with tempfile.TemporaryDirectory(prefix="ddpm_lab_ranks_") as logs:
            config = LaunchConfig(
                min_nodes=1,
                max_nodes=1,
                nproc_per_node=nproc,
                run_id=str(uuid.uuid4()),
                rdzv_backend="c10d",
                rdzv_endpoint="localhost:0",
                max_restarts=0,
                monitor_interval=0.1,
                logs_specs=DefaultLogsSpecs(log_dir=logs),
            )
            elastic_launch(config, sys.executable)("-m", module, *argv)
    except ChildFailedError as e:
        causes = {r: f for r, f in e.failures.items() if f.exitcode != EXIT_PEER_LOST} or e.failures
        rank, failure = min(causes.items(), key=lambda kv: kv[1].timestamp)
        how = (
            f"was killed by {failure.signal_name()}"
            if failure.exitcode < 0
            else f"exited with status {failure.exitcode}"
        )
        raise RankFailed(f"rank {rank} of {nproc} {how}", failure.exitcode) from None
    except SignalException as e:  # the launcher itself was stopped (Ctrl-C, kill): its ranks are stopped too
        raise RankFailed(f"stopped by {e.sigval.name}, with its {nproc} ranks", 128 + int(e.sigval)) from None
    finally:
        quiet.setLevel(level)


def launch_ranks(
    nproc: int, module: str, argv: list[str], device: torch.device, backend: str, name: str, checkpoint: Path
) -> None:
    """Run `python -m module *argv` as nproc ranks (launch), the stage `name` having checked its
    inputs; a failed rank ends it with one line and a non-zero exit (SystemExit): the rank's own
    status where rank 0 said why (bad input, stopped), else 1, saying whether `checkpoint` (the
    stage's resumable state) is kept for a rerun."""
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ConfigError(
            f"images_train.nproc = {nproc}: expected at most {torch.cuda.device_count()} "
            f"(the CUDA devices here, one per process)"
        )
    print(f"{name}: launching {nproc} processes ({backend}, {device.type})", file=sys.stderr)
    try:
        launch(nproc, module, argv)
    except RankFailed as e:
        if e.exitcode in (EXIT_BAD_INPUT, EXIT_STOPPED):  # rank 0 said why
            raise SystemExit(e.exitcode) from None
        kept = (
            f"the checkpoint {checkpoint} is kept, a rerun resumes from it"
            if checkpoint.is_file()
            else "no checkpoint yet, a rerun starts from step 0"
        )
        print(f"error: {name}: {e}: no outputs written; {kept}", file=sys.stderr)
        raise SystemExit(1) from None


@contextmanager
def rank_run(world: World, backend: str) -> Iterator[None]:
    """The work of one rank of `world` (or of the one process of World()): joins the process group
    first (world.size > 1) and always leaves it. Failures become what launch_ranks reads: Stopped
    -> EXIT_STOPPED (rank 0 prints its line); a ConfigError / DataError is raised on rank 0 (one
    line, exit 2, by run_stage) and EXIT_BAD_INPUT on the others; a collective failing because
    another rank is gone -> EXIT_PEER_LOST (the launcher names the rank that died); Ctrl-C on a
    rank (the launcher passes it on, and says it was stopped) -> 128 + SIGINT."""
    try:
        if world.size > 1:
            join(world, backend)
        yield
    except Stopped as s:
        if world.main:
            print(s, file=sys.stderr)
        raise SystemExit(EXIT_STOPPED) from None
    except (ConfigError, DataError):
        if world.main:
            raise
        raise SystemExit(EXIT_BAD_INPUT) from None  # every rank raises it; rank 0 says it
    except Exception as e:
        if world.size > 1 and peer_lost(e):
            raise SystemExit(EXIT_PEER_LOST) from None  # another rank died: the launcher names it
        raise
    except KeyboardInterrupt:
        if world.size > 1:
            raise SystemExit(128 + signal.SIGINT) from None
        raise
    finally:
        leave()
