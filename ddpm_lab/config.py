"""Typed, validated configuration: one dataclass per params.yaml section.

`from_section(cls, params, section)` checks for missing and unknown keys and for each
field's type, then builds the dataclass, whose `__post_init__` checks values. Every
failure is a ConfigError whose text is one line naming the key, the value and what was
expected, e.g. "params.yaml: train_eq12.lr = -1.0: expected a positive number".
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import numpy as np


class ConfigError(ValueError):
    """Bad params: the message is one line naming the key, the value and what was expected."""


class DataError(ValueError):
    """A missing, unreadable or inconsistent input file: one line naming the file."""


def require(ok: bool, key: str, value, expected: str) -> None:
    """Raise ValueError('key = value: expected ...') unless ok."""
    if not ok:
        raise ValueError(f"{key} = {value!r}: expected {expected}")


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
        return " or ".join(_check_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return None if v is None else "null"
    if tp is int:
        return None if _is_int(v) else "an integer"
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
            if _check_type(item, typing.get_args(tp)[0]) is not None:
                return f"a non-empty {_check_type_name(tp)}"
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
    (facts of the data, such as its dimension, rather than settings)."""
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
        require(abs(w.sum() - 1.0) <= 1e-6, "weights", self.weights, f"weights summing to 1 (they sum to {w.sum():g})")
        for name in ("means", "stds"):
            v = getattr(self, name)
            require(len(v) == w.size, name, v, f"{w.size} entries, one per weight")
            kinds = {len(x) if isinstance(x, list) else -1 for x in v}  # -1: a number
            require(len(kinds) == 1 and 0 not in kinds, name, v,
                    "all entries numbers (1-D) or all non-empty lists of one length (D-dim)")
        require(np.shape(self.means) == np.shape(self.stds), "stds", self.stds, "the same shape as means")
        require(bool(np.all(np.asarray(self.stds, dtype=np.float64) > 0)), "stds", self.stds, "positive numbers")
        require(self.n_train >= 2, "n_train", self.n_train, "an integer >= 2")
        require(self.n_heldout >= 2, "n_heldout", self.n_heldout, "an integer >= 2")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")


@dataclass(frozen=True)
class DiffusionConfig:
    """Section `diffusion`: the forward process beta_1..beta_T and the reverse variance."""

    T: int
    schedule: str
    beta_start: float
    beta_end: float
    variance: str

    def __post_init__(self):
        from ddpm_lab.diffusion import VARIANCES
        from ddpm_lab.schedule import SCHEDULES

        require(self.T >= 1, "T", self.T, "an integer >= 1")
        require(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        require(0 < self.beta_start < 1, "beta_start", self.beta_start, "a number in (0, 1)")
        require(0 < self.beta_end < 1, "beta_end", self.beta_end, "a number in (0, 1)")
        require(self.variance in VARIANCES, "variance", self.variance, f"one of {', '.join(VARIANCES)}")

    def build(self):
        """The GaussianDiffusion of this config."""
        from ddpm_lab.diffusion import GaussianDiffusion
        from ddpm_lab.schedule import make_betas

        return GaussianDiffusion(make_betas(self.schedule, self.T, self.beta_start, self.beta_end), self.variance)
