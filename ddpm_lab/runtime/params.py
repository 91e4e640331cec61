"""Typed, validated configuration: one dataclass per params.yaml section.

`from_section(cls, params, section)` checks for missing and unknown keys and for each
field's type, then builds the dataclass, whose `__post_init__` checks values. Every
failure is a ConfigError whose text is one line naming the key, the value and what was
expected, e.g. "params.yaml: train_eq12.lr = -1.0: expected a positive number".

A section may also be refused for what it needs of the machine (sizes whose estimated memory
exceeds the machine's RAM: `require_memory`) and of the other sections of the same file
(e.g. compare_dist.nll_n <= gmm.n_heldout): see "Needs of each section" at the end. Those
checks live here, beside the classes, and import only the diffusion maths, so that every
stage runs them (from_section) without importing the other stages' code; `check_params`
runs them for every section at once (the first stage, generate_gmm, does, before any work),
and `python -m ddpm_lab.tools.preflight` builds and checks every section of a params file.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ddpm_lab.core.diffusion import VARIANCES, GaussianDiffusion
from ddpm_lab.core.schedule import SCHEDULE_BETAS, SCHEDULES, make_betas


# |sum(weights) - 1| allowed in a mixture; within it the weights are renormalised (GMMConfig and
# GaussianMixture both use this one tolerance, so what the config accepts the mixture accepts).
WEIGHT_SUM_TOL = 1e-6

# Integers in params must fit a signed 64-bit integer (numpy, torch and the seeds all need that).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_INT_RANGE = "between -2^63 and 2^63 - 1"


class ConfigError(ValueError):
    """Bad params: the message is one line naming the key, the value and what was expected."""


class DataError(ValueError):
    """A missing, unreadable or inconsistent input file: one line naming the file."""


def require(ok: bool, key: str, value, expected: str) -> None:
    """Raise ValueError('key = value: expected ...') unless ok."""
    if not ok:
        raise ValueError(f"{key} = {value!r}: expected {expected}")


def machine_memory() -> int | None:
    """Total physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    """n bytes in binary units: '512 B', '23.5 GiB', '7.3 TiB', '2.1e+06 YiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 1e4 else f"{n:.1e} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def largest_fitting(need: typing.Callable[[int], float], upper: int, budget: float) -> int:
    """The largest x in [0, upper] with need(x) <= budget, for need increasing in x (bisection)."""
    lo, hi = 0, upper
    if need(lo) > budget:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if need(mid) <= budget else (lo, mid - 1)
    return lo


def require_memory(key: str, value, need: typing.Callable[[int], float], what: str, unit: str = "") -> None:
    """Raise ValueError('key = value: expected at most N <unit> (<what>: about X; this machine has Y)')
    if need(value), the estimated peak bytes of a size setting, exceeds the machine's memory.
    need: bytes as a function of the value (increasing), with every other setting fixed."""
    ram = machine_memory()
    if ram is None or need(value) <= ram:
        return
    most = largest_fitting(need, value, ram)
    raise ValueError(f"{key} = {value!r}: expected at most {most:,}{unit} ({what}: about "
                     f"{format_bytes(need(value))}; this machine has {format_bytes(ram)})")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and bool(np.isfinite(v))


def _check_type(v, tp) -> str | None:
    """None if v fits the annotation tp, else the expected type in words."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        for arm in typing.get_args(tp):
            if _check_type(v, arm) is None:
                return None
        return "a " + " or ".join(_check_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return None if v is None else "null"
    if tp is int:
        if not _is_int(v):
            return "an integer"
        return None if INT_MIN <= v <= INT_MAX else f"an integer {_INT_RANGE}"
    if tp is float:
        return None if _is_number(v) else "a number"
    if tp is str:
        return None if isinstance(v, str) else "a string"
    if tp is bool:
        return None if isinstance(v, bool) else "true or false"
    if origin is list:
        if not isinstance(v, list) or not v:
            return f"a non-empty {_check_type_name(tp)}"
        for item in v:
            item_expected = _check_type(item, typing.get_args(tp)[0])
            if item_expected is not None:
                in_range = f", each {_INT_RANGE}" if item_expected.endswith(_INT_RANGE) else ""
                return f"a non-empty {_check_type_name(tp)}{in_range}"
        return None
    raise TypeError(f"unsupported config annotation {tp!r}")


def _check_type_name(tp) -> str:
    """The annotation tp in words, singular: 'number', 'list of numbers', 'number or list of numbers'."""
    if typing.get_origin(tp) is typing.Union:
        return " or ".join(_check_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        inner = typing.get_args(tp)[0]
        if typing.get_origin(inner) is typing.Union:
            return f"list whose items are each a {_check_type_name(inner)}"
        return f"list of {_check_type_name(inner)}s"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
    return names.get(tp, str(tp))


T = typing.TypeVar("T")


def from_section(cls: type[T], params: dict, section: str, source: str = "params.yaml", **fixed) -> T:
    """Build config class `cls` from params[section], or raise ConfigError (one line).
    Every field is required in the section, except those given in `fixed` by the caller
    (facts of the data, such as its dimension, rather than settings). The built config is then
    checked against the machine and the other sections of params (`check_section`: memory
    estimates that need other sections, cross-section constraints)."""
    cfg = build_section(cls, params, section, source, **fixed)
    check_section(section, cfg, params, source)
    return cfg


def build_section(cls: type[T], params: dict, section: str, source: str = "params.yaml", **fixed) -> T:
    """from_section without the checks against other sections: the section's own validation only."""
    raw = params.get(section) if isinstance(params, dict) else None
    if not isinstance(raw, dict):
        got = "missing" if raw is None else repr(raw)
        raise ConfigError(f"{source}: section '{section}' is {got}: expected a mapping of "
                          f"{', '.join(f.name for f in dataclasses.fields(cls))}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: {section}.{unknown[0]} is not a known key: expected one of "
                          f"{', '.join(fields)}")
    for name in fields:
        if name not in raw:
            raise ConfigError(f"{source}: {section}.{name} is missing: expected "
                              f"{_check_type(object(), hints[name])}")
        expected = _check_type(raw[name], hints[name])
        if expected is not None:
            raise ConfigError(f"{source}: {section}.{name} = {raw[name]!r}: expected {expected}")
    try:
        return cls(**raw, **fixed)
    except ValueError as e:
        raise ConfigError(f"{source}: {section}.{e}") from None


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


# |means| <= DATA_SCALE_MAX and 1 / DATA_SCALE_MAX <= stds <= DATA_SCALE_MAX: keeps float64 finite.
DATA_SCALE_MAX = 1e6


@dataclass(frozen=True)
class GMMConfig:
    """Section `gmm`: the mixture p(x_0) = sum_k weights[k] N(means[k], stds[k]^2) (flat lists
    for 1-D, lists of D-lists for D > 1), how many train / held-out draws, and the seed."""

    weights: list[float]
    means: list[typing.Union[float, list[float]]]
    stds: list[typing.Union[float, list[float]]]
    n_train: int
    n_heldout: int
    seed: int

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float64)
        require(bool(np.all(w >= 0)), "weights", self.weights, "non-negative weights")
        require(abs(w.sum() - 1.0) <= WEIGHT_SUM_TOL, "weights", self.weights,
                f"weights summing to 1 (they sum to {w.sum():.10g})")
        for name in ("means", "stds"):
            v = getattr(self, name)
            require(len(v) == w.size, name, v, f"{w.size} entries, one per weight")
            kinds = {len(x) if isinstance(x, list) else -1 for x in v}  # -1: a number
            require(len(kinds) == 1 and 0 not in kinds, name, v,
                    "all entries numbers (1-D) or all non-empty lists of one length (D-dim)")
        require(np.shape(self.means) == np.shape(self.stds), "stds", self.stds, "the same shape as means")
        m = np.asarray(self.means, dtype=np.float64)
        s = np.asarray(self.stds, dtype=np.float64)
        require(bool(np.all(s > 0)), "stds", self.stds, "positive numbers")
        # The exact computations (density, eps*, quadrature) are float64: data of order 1 is the
        # design; these bounds only keep them finite.
        require(bool(np.all(np.abs(m) <= DATA_SCALE_MAX)), "means", self.means,
                f"numbers in [-{DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]")
        require(bool(np.all((s >= 1 / DATA_SCALE_MAX) & (s <= DATA_SCALE_MAX))), "stds", self.stds,
                f"numbers in [{1 / DATA_SCALE_MAX:g}, {DATA_SCALE_MAX:g}]")
        require(self.n_train >= 2, "n_train", self.n_train, "an integer >= 2")
        require(self.n_heldout >= 2, "n_heldout", self.n_heldout, "an integer >= 2")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        row = self.draw_row_bytes
        require_memory("n_train", self.n_train, lambda n: n * row, "the training draws with their temporaries",
                       " rows")
        require_memory("n_heldout", self.n_heldout, lambda n: (self.n_train + n) * row,
                       f"the held-out draws beside n_train = {self.n_train} training draws", " rows")

    @property
    def dim(self) -> int:
        """D: 1 for flat lists, else the length of each entry of means."""
        return len(self.means[0]) if isinstance(self.means[0], list) else 1

    @property
    def draw_row_bytes(self) -> int:
        """Peak bytes per drawn row in generate_gmm: component index and uniform draw (8 + 8),
        and five (D,) float64 arrays (the normals, gathered means and stds, the draw, its bytes)."""
        return 16 + 40 * self.dim


@dataclass(frozen=True)
class DiffusionConfig:
    """Section `diffusion` (and `images_diffusion`): the forward process beta_1..beta_T and the
    reverse variance. beta_start, beta_end: the linear schedule's first and last beta (numbers,
    beta_start <= beta_end); the cosine schedule sets its own betas, so for it both must be null."""

    T: int
    schedule: str
    beta_start: typing.Optional[float]
    beta_end: typing.Optional[float]
    variance: str

    # Bytes per timestep of GaussianDiffusion: 13 float64 coefficient arrays of length T + 1
    # plus their temporaries while they are computed.
    STEP_BYTES = 8 * 24

    def __post_init__(self):
        require(self.T >= 1, "T", self.T, "an integer >= 1")
        require(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        if SCHEDULE_BETAS[self.schedule]:
            for name in ("beta_start", "beta_end"):
                v = getattr(self, name)
                require(v is not None and 0 < v < 1, name, v, f"a number in (0, 1) (schedule {self.schedule})")
            require(self.beta_start <= self.beta_end, "beta_end", self.beta_end,
                    f"a number >= beta_start = {self.beta_start!r} (schedule {self.schedule} increases the noise "
                    f"from beta_start to beta_end)")
        else:
            for name in ("beta_start", "beta_end"):
                v = getattr(self, name)
                require(v is None, name, v, f"null with schedule {self.schedule} (it sets its own betas: "
                        f"{name} is for schedule linear only)")
        require(self.variance in VARIANCES, "variance", self.variance, f"one of {', '.join(VARIANCES)}")
        require_memory("T", self.T, lambda t: (t + 1) * self.STEP_BYTES, "the schedule's coefficient arrays",
                       " timesteps")

    def build(self):
        """The GaussianDiffusion of this config."""
        return GaussianDiffusion(make_betas(self.schedule, self.T, self.beta_start, self.beta_end), self.variance)


# -- Needs of each section: memory estimates and constraints across sections ---------------------
# A check gets the section's config (or, from check_params, its raw values as a namespace),
# the whole params dict and the file name; it raises ValueError('key = value: expected ...')
# for a key of its section. Another section that is missing or invalid is skipped (its own
# stage refuses it). The estimates are deliberately rough (a factor of two either way): they
# exist to refuse absurd sizes (n_train = 10^12) in one line, before any work, instead of a
# numpy / torch allocation traceback minutes later; not to plan memory.

F32, F64, I64 = 4, 8, 8  # bytes
TRAIN_STATE = 5  # copies of each float32 weight while training: weights, gradient, two Adam moments, EMA
THREADS_MAX = 1024  # torch CPU threads: beyond this torch overflows, or the process crashes


def require_threads(value) -> None:
    """A section's `threads`: torch CPU threads, 0 for torch's default (then the bytes depend on
    the machine's core count: CPU kernels split float sums by thread)."""
    require(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= THREADS_MAX, "threads", value,
            f"an integer in [0, {THREADS_MAX}] (0: torch's default)")
# Image shape (channels, side) of each images_data.source, known before any data is read.
IMAGE_SHAPES = {"digits": (1, 8), "mnist": (1, 28), "fashion_mnist": (1, 28)}
IMAGE_COUNTS = {"digits": 1_797, "mnist": 70_000, "fashion_mnist": 70_000}  # train + test images


def _values(params: dict, section: str, types: dict, **fixed) -> SimpleNamespace | None:
    """The raw values of some keys of params[section] as a namespace, or None if the section is
    missing or any of them has the wrong type (its own stage refuses it)."""
    raw = params.get(section) if isinstance(params, dict) else None
    if not isinstance(raw, dict) or any(name not in raw or _check_type(raw[name], tp) is not None
                                        for name, tp in types.items()):
        return None
    return SimpleNamespace(**{name: raw[name] for name in types}, **fixed)


def _positive(*values) -> bool:
    """Every value (or list entry) >= 1: sizes a memory estimate can use."""
    flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return all(x >= 1 for x in flat)


def _other(cls, params: dict, section: str, source: str):
    """Another section built with its own validation only, or None if it is missing or invalid."""
    try:
        return build_section(cls, params, section, source)
    except ConfigError:
        return None


def _fits(need: float) -> bool:
    ram = machine_memory()
    return ram is None or need <= ram


def _require_fits(key: str, value, need: float, what: str) -> None:
    """Refuse a setting that is not one size (a list, or one of several sizes) whose memory exceeds the machine's."""
    ram = machine_memory()
    require(ram is None or need <= ram, key, value,
            f"smaller sizes ({what}: about {format_bytes(need)}; this machine has {format_bytes(ram or 0)})")


# The GMM branch's eps-network, ddpm_lab.gmm.model.EpsMLP (section `model`).
MLP_TYPES = {"hidden": int, "n_blocks": int, "emb_dim": int}


def mlp_parameters(hidden: int, n_blocks: int, emb_dim: int, data_dim: int) -> int:
    """Parameters of EpsMLP: time MLP, input layer, n_blocks residual blocks of two layers, output."""
    H = hidden
    return (emb_dim * H + H + H * H + H) + (data_dim * H + H) + n_blocks * 2 * (H * H + H) + (H * data_dim + data_dim)


def mlp_row_bytes(m, grad: bool) -> int:
    """Activations of EpsMLP per input row (float32). Training (grad): about six H-vectors per
    block kept for the backward pass, and as much again for their gradients; without gradients
    only a few H-vectors are alive at once. Plus the time embedding, the input and the output."""
    per = (2 * m.hidden * (6 * m.n_blocks + 4) if grad else 4 * m.hidden) + m.emb_dim + 4 * m.data_dim
    return F32 * per


def mlp_state_bytes(m) -> int:
    return F32 * TRAIN_STATE * mlp_parameters(m.hidden, m.n_blocks, m.emb_dim, m.data_dim)


def _gmm_and_model(params: dict, source: str):
    """(GMMConfig or None, the model sizes or None): the model only if it fits in memory (else
    section `model` is refused by its own check)."""
    gmm = _other(GMMConfig, params, "gmm", source)
    m = _values(params, "model", MLP_TYPES, data_dim=gmm.dim if gmm else 1)
    ok = m is not None and _positive(m.hidden, m.n_blocks, m.emb_dim) and _fits(mlp_state_bytes(m))
    return gmm, m if ok else None


def check_model(m, params: dict, source: str) -> None:
    sizes = dict(hidden=m.hidden, n_blocks=m.n_blocks, emb_dim=m.emb_dim, data_dim=getattr(m, "data_dim", 1))
    if not _positive(m.hidden, m.n_blocks, m.emb_dim):
        return
    key = max(MLP_TYPES, key=lambda k: sizes[k])  # the largest size is the one to blame
    need = lambda v: F32 * TRAIN_STATE * mlp_parameters(**{**sizes, key: v})  # noqa: E731
    require_memory(key, sizes[key], need, "the network's weights, gradients, Adam moments and EMA")


def check_train_eq12(cfg, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    if m is None:
        return
    row = mlp_row_bytes(m, grad=True) + 2 * I64 + 3 * F32 * m.data_dim
    require_memory("batch_size", cfg.batch_size, lambda b: mlp_state_bytes(m) + b * row,
                   "one training step", " rows per step")


def check_train_eq3(cfg, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    d = _other(DiffusionConfig, params, "diffusion", source)
    if d is not None and getattr(cfg, "estimator", None) == "subsampled" and isinstance(cfg.terms_per_trajectory, int):
        require(cfg.terms_per_trajectory <= d.T, "terms_per_trajectory", cfg.terms_per_trajectory,
                f"an integer in [1, diffusion.T = {d.T}] (K of the T terms of a trajectory)")
    if m is None or d is None:
        return
    # Each trajectory is T rows: network activations plus about twelve float64 (D,) arrays
    # (the trajectory, its noise, x_{t-1}, x_t, means, variances, log-densities).
    row = mlp_row_bytes(m, grad=True) + I64 + 12 * F64 * m.data_dim
    require_memory("batch_size", cfg.batch_size, lambda b: mlp_state_bytes(m) + b * d.T * row,
                   f"one training step of batch_size x diffusion.T = {d.T} network rows",
                   f" trajectories per step at diffusion.T = {d.T}")


def _oracle_row_bytes(gmm) -> int:
    """eps* of the mixture per row: about five float64 (K, D) arrays and three (K,) ones."""
    K, D = len(gmm.weights), gmm.dim
    return F64 * (5 * K * D + 3 * K + 2 * D)


def require_steps(cfg, T: int, key: str) -> None:
    """A sampler's steps (0: every t) against its diffusion's T, a coupled param."""
    if isinstance(cfg.steps, int):
        require(cfg.steps <= T, "steps", cfg.steps, f"an integer in [0, {key} = {T}] (0: every timestep)")


def check_sample(cfg, params: dict, source: str) -> None:
    d = _other(DiffusionConfig, params, "diffusion", source)
    if d is not None:
        require_steps(cfg, d.T, "diffusion.T")
    gmm, m = _gmm_and_model(params, source)
    if gmm is None:
        return
    D, S = gmm.dim, len(cfg.seeds)
    work = max(_oracle_row_bytes(gmm), mlp_row_bytes(m, grad=False) if m else 0) + 3 * F32 * D
    kept = 3 * S * D * F32 * 2  # x0 of three samplers for every seed, stacked (a copy) into the .npz
    require_memory("n", cfg.n, lambda n: n * (work + kept), f"{S} seeds x 3 samplers of n draws", " draws per seed")
    if d is not None and cfg.trajectory_every >= 1:
        kept_steps = d.T // cfg.trajectory_every + 2
        require_memory("n_trajectories", cfg.n_trajectories, lambda r: r * kept_steps * D * F32 * 3 * 2,
                       f"the kept trajectories ({kept_steps} steps each at diffusion.T = {d.T}, "
                       f"trajectory_every = {cfg.trajectory_every}, 3 samplers)", " trajectories")


def check_compare_dist(cfg, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    if gmm is None:
        return
    require(cfg.nll_n <= gmm.n_heldout, "nll_n", cfg.nll_n,
            f"an integer in [0, gmm.n_heldout = {gmm.n_heldout}] (0: all held-out rows)")
    d = _other(DiffusionConfig, params, "diffusion", source)
    if d is not None:
        row = F64 * (5 * gmm.dim + 3) + max(_oracle_row_bytes(gmm), mlp_row_bytes(m, grad=False) if m else 0)
        require_memory("nll_batch", cfg.nll_batch, lambda b: b * d.T * row,
                       f"one batched call of nll_batch x diffusion.T = {d.T} rows",
                       f" held-out rows per call at diffusion.T = {d.T}")
    s = _values(params, "sample", {"n": int, "seeds": list[int]})
    if s is not None and gmm.dim > 1 and s.n >= 1:
        pooled = len(s.seeds) * s.n
        require_memory("directions", cfg.directions, lambda L: pooled * L * F64 * 3,
                       f"the sliced W1 of {pooled} pooled draws", " directions")


def check_sampler_tradeoff(cfg, params: dict, source: str) -> None:
    """Checked whether or not the section is enabled: a file that is valid only while disabled
    would fail later, at `dvc exp run -S sampler_tradeoff.enabled=true`."""
    gmm, m = _gmm_and_model(params, source)
    if gmm is None or not _positive(cfg.n, cfg.directions):
        return
    D, S = gmm.dim, len(cfg.seeds)
    L = cfg.directions if D > 1 else 0
    work = max(_oracle_row_bytes(gmm), mlp_row_bytes(m, grad=False) if m else 0) + 3 * F32 * D
    # One (sampler, steps, model) at a time: its S seeds' draws, stacked (a copy), and the pooled
    # statistics: about three float64 copies of the D coordinates and L projections, sorted.
    pooled = S * (2 * F32 * D + 3 * F64 * (D + L))
    require_memory("n", cfg.n, lambda n: n * (work + pooled), f"{S} seeds x n draws pooled, with their statistics",
                   " draws per seed")
    if D > 1:
        require_memory("directions", cfg.directions, lambda k: S * cfg.n * (work + 2 * F32 * D + 3 * F64 * (D + k)),
                       f"the sliced W1 of {S * cfg.n} pooled draws", " directions")


def check_plot(cfg, params: dict, source: str) -> None:
    gmm = _other(GMMConfig, params, "gmm", source)
    if gmm is None:
        return
    require(cfg.n_forward_paths <= gmm.n_train, "n_forward_paths", cfg.n_forward_paths,
            f"an integer in [1, gmm.n_train = {gmm.n_train}] (the paths start at training draws)")
    d = _other(DiffusionConfig, params, "diffusion", source)
    if d is not None:
        # q_trajectory: noise, random walk, x_t and the concatenated path, float64, T + 1 steps each.
        require_memory("n_forward_paths", cfg.n_forward_paths, lambda p: p * (d.T + 1) * gmm.dim * F64 * 4,
                       f"the forward paths of diffusion.T = {d.T} steps", " paths")



def check_estimator_variance(cfg, params: dict, source: str) -> None:
    """Stage estimator_variance: one minibatch's gradient (rows x evaluations per row network rows,
    with the backward pass) and the minibatch gradients kept (two (minibatches, parameters) float64
    matrices, the estimator's and the reference's, and their Gram matrices)."""
    gmm, m = _gmm_and_model(params, source)
    d = _other(DiffusionConfig, params, "diffusion", source)
    if m is None or d is None:
        return
    # As in train_eq3: network activations plus about twelve float64 (D,) arrays per row.
    row = mlp_row_bytes(m, grad=True) + I64 + 12 * F64 * m.data_dim
    base = mlp_state_bytes(m)
    require_memory("rows_trajectory", cfg.rows_trajectory, lambda r: base + r * d.T * row,
                   f"one minibatch of rows_trajectory x diffusion.T = {d.T} network rows", " rows")
    # The subsampled estimators draw a random permutation of 1..T per row (float32 keys, int64 order)
    # and evaluate up to T of its timesteps, each with a (x_{t-1}, x_t) pair.
    require_memory("rows_subsampled", cfg.rows_subsampled,
                   lambda r: base + r * d.T * (row + F32 + 2 * I64 + 2 * F64 * m.data_dim),
                   f"one minibatch of rows_subsampled x up to diffusion.T = {d.T} network rows", " rows")
    require_memory("rows_eq12", cfg.rows_eq12, lambda r: base + r * (row + 2 * I64), "one Eq. 12 minibatch", " rows")
    n_params = mlp_parameters(m.hidden, m.n_blocks, m.emb_dim, m.data_dim)
    require_memory("minibatches", cfg.minibatches, lambda k: F64 * (4 * k * n_params + 3 * k * k),
                   f"the minibatch gradients of two estimators ({n_params:,} parameters each)", " minibatches")

# The image branch's U-Net, ddpm_lab.images.unet.UNet (section `images_model`).
UNET_TYPES = {"base_channels": int, "channel_mults": list[int], "num_res_blocks": int, "attn_heads": int}


def _image_shape(params: dict) -> tuple[int, int] | None:
    raw = params.get("images_data") if isinstance(params, dict) else None
    src = raw.get("source") if isinstance(raw, dict) else None
    return IMAGE_SHAPES.get(src) if isinstance(src, str) else None


def unet_sizes(u) -> tuple[int, int]:
    """(parameters, float32 activations per image in one forward pass) of the U-Net, roughly:
    every ResBlock counted at the widest level width W with inputs up to 2W (skip
    concatenation), every attention block at the lowest resolution."""
    W, E, R, L = u.base_channels * max(u.channel_mults), 4 * u.base_channels, u.num_res_blocks, len(u.channel_mults)
    n_res, n_attn = L * (2 * R + 1) + 2, 2 * R + 2
    n_params = n_res * (29 * W * W + E * W) + n_attn * 4 * W * W + 2 * E * E
    side_low = max(1, u.image_size // 2 ** (L - 1))
    acts = sum(8 * (2 * R + 1) * u.base_channels * mult * max(1, u.image_size // 2**lvl) ** 2
               for lvl, mult in enumerate(u.channel_mults))
    return n_params, acts + n_attn * u.attn_heads * side_low**4


def _unet_state_bytes(u) -> int:
    return F32 * TRAIN_STATE * unet_sizes(u)[0]


def _unet(params: dict):
    """The U-Net sizes of params (image shape from images_data.source), or None if invalid or
    too big (then section images_model is refused by its own check)."""
    shape = _image_shape(params)
    u = None if shape is None else _values(params, "images_model", UNET_TYPES, in_channels=shape[0], image_size=shape[1])
    ok = (u is not None and _positive(u.base_channels, u.channel_mults, u.num_res_blocks, u.attn_heads)
          and u.attn_heads <= u.base_channels * u.channel_mults[-1])  # heads divide the lowest level's width
    return u if ok and _fits(_unet_state_bytes(u)) else None


def check_images_model(u, params: dict, source: str) -> None:
    if not _positive(u.base_channels, u.channel_mults, u.num_res_blocks, u.attn_heads) or _fits(_unet_state_bytes(u)):
        return
    what = "the U-Net's weights, gradients, Adam moments and EMA"
    sizes = {"base_channels": u.base_channels, "num_res_blocks": u.num_res_blocks, "channel_mults": max(u.channel_mults)}
    key = max(sizes, key=sizes.get)  # the largest size is the one to blame
    if key == "channel_mults":
        _require_fits(key, u.channel_mults, _unet_state_bytes(u), what)
    fields = {name: getattr(u, name) for name in (*UNET_TYPES, "in_channels", "image_size")}
    require_memory(key, sizes[key], lambda v: _unet_state_bytes(SimpleNamespace(**{**fields, key: v})), what)


def check_images_train(cfg, params: dict, source: str) -> None:
    u = _unet(params)
    if u is None:
        return
    n_params, acts = unet_sizes(u)
    # Training keeps the activations for the backward pass and their gradients: about 3x.
    require_memory("batch_size", cfg.batch_size, lambda b: F32 * (TRAIN_STATE * n_params + 3 * b * acts),
                   "one U-Net training step", " images per step")


def check_images_sample(cfg, params: dict, source: str) -> None:
    d = _other(DiffusionConfig, params, "images_diffusion", source)
    if d is not None:
        require_steps(cfg, d.T, "images_diffusion.T")
    u = _unet(params)
    if u is None:
        return
    n_params, acts = unet_sizes(u)
    pixels = u.in_channels * u.image_size**2
    # Without gradients only the skip connections and a few working tensors are alive: about a third.
    require_memory("n_samples", cfg.n_samples, lambda n: F32 * (n_params + n * (acts // 3 + 4 * pixels)),
                   "one batched U-Net call on every sample", " images")


def check_images_eval(cfg, params: dict, source: str) -> None:
    shape = _image_shape(params)
    if shape is None or not _positive(cfg.hidden):
        return
    widths = [shape[0] * shape[1] ** 2, *cfg.hidden, 10]
    n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    # scikit-learn's MLP: float64 weights, gradients and two Adam moments; the features of every image.
    need = F64 * (4 * n_params + IMAGE_COUNTS[params["images_data"]["source"]] * sum(cfg.hidden) * 2)
    _require_fits("hidden", cfg.hidden, need, "the feature classifier and the features of every image")


# section -> (its check, the types of the keys it reads: what check_params needs of raw values)
SECTION_NEEDS: dict[str, tuple[typing.Callable, dict]] = {
    "model": (check_model, MLP_TYPES),
    "train_eq12": (check_train_eq12, {"batch_size": int}),
    "train_eq3": (check_train_eq3, {"batch_size": int, "estimator": str, "terms_per_trajectory": int}),
    "sample": (check_sample, {"n": int, "seeds": list[int], "n_trajectories": int, "trajectory_every": int,
                              "steps": int}),
    "compare_dist": (check_compare_dist, {"nll_n": int, "nll_batch": int, "directions": int}),
    "plot": (check_plot, {"n_forward_paths": int}),
    "sampler_tradeoff": (check_sampler_tradeoff, {"n": int, "seeds": list[int], "directions": int}),
    "estimator_variance": (check_estimator_variance, {"minibatches": int, "rows_trajectory": int,
                                                      "rows_subsampled": int, "rows_eq12": int}),
    "images_model": (check_images_model, UNET_TYPES),
    "images_train": (check_images_train, {"batch_size": int}),
    "images_sample": (check_images_sample, {"n_samples": int, "steps": int}),
    "images_eval": (check_images_eval, {"hidden": list[int]}),
}


def check_section(section: str, cfg, params: dict, source: str = "params.yaml") -> None:
    """The needs of `section` (built as cfg) against the machine and the other sections of
    params, or ConfigError naming the key (run by from_section)."""
    check = SECTION_NEEDS.get(section, (None, None))[0]
    if check is None or not isinstance(params, dict):
        return
    try:
        check(cfg, params, source)
    except ValueError as e:
        raise ConfigError(f"{source}: {section}.{e}") from None


def check_params(params: dict, source: str = "params.yaml") -> None:
    """The needs of every section, from the raw values of params (the section's own validation
    is its stage's): every memory estimate and cross-section constraint, before any work.
    The first stage (generate_gmm) calls it; the first failure is a ConfigError."""
    gmm = build_section(GMMConfig, params, "gmm", source)
    fixed = {"model": {"data_dim": gmm.dim}}
    shape = _image_shape(params)
    if shape is not None:
        fixed["images_model"] = {"in_channels": shape[0], "image_size": shape[1]}
    for section in ("diffusion", "images_diffusion"):
        if isinstance(params.get(section), dict):
            build_section(DiffusionConfig, params, section, source)
    for section, (_, types) in SECTION_NEEDS.items():
        values = _values(params, section, types, **fixed.get(section, {}))
        if values is not None and (section != "images_model" or shape is not None):
            check_section(section, values, params, source)
