"""Params: one schema per section of params.yaml, validated by pydantic, and one-line errors.

A schema is a frozen pydantic dataclass declared with `@schema`: strict types (no "3" for 3,
no true for 1), unknown keys forbidden, NaN and infinities refused, every integer within int64.
It is defined beside the component it configures (DiffusionConfig in ddpm_lab/core/diffusion.py,
MLPConfig in ddpm_lab/gmm/model.py, UNetConfig in ddpm_lab/images/unet.py, ...). Checks between
fields stay in the schema's `__post_init__`, as `require(ok, key, value, expected)`.

Every field says what it means in the schema itself, `name: Annotated[T, doc("...")]`: pydantic's
description (and, for a fixed set of values, their choices); ddpm_lab/tools/params_doc.py writes
docs/params.md from them. What a shared type's errors expect is its `Expected` marker, so that a
field's description never changes an error.

`from_section(cls, params, section)` builds a section and turns pydantic's first error into
one line naming the key, the value and what was expected, e.g.
"params.yaml: train_eq12.lr = -1.0: expected a positive number". Each branch's params module
(ddpm_lab/gmm/params.py, ddpm_lab/images/params.py) adds the section's needs: what it needs of
the machine (memory estimates, `require_memory`) and of the other sections of the same file
(e.g. compare_dist.nll_n <= gmm.n_heldout). The first stage of each branch checks all of its
sections before any work; `ddpm-lab preflight` checks both branches.

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from typing import Annotated, Callable

import pydantic
from pydantic import ConfigDict, Field, ValidationError

# Integers in params must fit a signed 64-bit integer (numpy, torch and the seeds all need that).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
THREADS_MAX = 1024  # torch CPU threads: beyond this torch overflows, or the process crashes
F32, F64, I64 = 4, 8, 8  # bytes
TRAIN_STATE = 5  # copies of each float32 weight while training: weights, gradient, two Adam moments, EMA

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def schema(cls=None, /, **kwargs):
    """Declare a params schema: a frozen pydantic dataclass with the STRICT config, whose
    constructor turns pydantic's errors into one line (ValueError: 'key = value: expected ...')."""

    def wrap(c):
        c = pydantic.dataclasses.dataclass(frozen=True, config=STRICT, **kwargs)(c)
        validate = c.__init__

        @functools.wraps(validate)
        def __init__(self, *args, **kw):
            try:
                validate(self, *args, **kw)
            except ValidationError as e:
                raise ValueError(error_line(c, e, kw)) from None

        c.__init__ = __init__
        return c

    return wrap if cls is None else wrap(cls)


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a shared type's errors expect, in words: `Annotated[int, Field(ge=0), Expected("...")]`
    (without it, an error names the type or its bound in words). Kept apart from the description,
    which says what a field means (docs/params.md) and differs from field to field."""

    text: str


def doc(description: str, choices: typing.Iterable[str] | None = None):
    """A field's description, and the values it takes when they are a fixed set (checked in the
    schema's `__post_init__`): `mode: Annotated[str, doc("...", choices=MODES)]`. Validation and
    errors are unchanged; docs/params.md shows both (ddpm_lab/tools/params_doc.py). choices are
    read when asked (`choices_of`): a registry filled after the class is defined is complete."""
    if choices is None:
        return Field(description=description)

    def add_choices(json_schema: dict) -> None:
        json_schema["choices"] = list(choices)

    return Field(description=description, json_schema_extra=add_choices)


def choices_of(field) -> list[str] | None:
    """The choices given to a field's `doc`, or None."""
    if not callable(field.json_schema_extra):
        return None
    extra: dict = {}
    field.json_schema_extra(extra)
    return extra.get("choices")


# -- Types shared by the schemas; `Expected` is the "expected ..." of their errors -------------------
Int = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
Count = Annotated[int, Field(ge=1, le=INT_MAX)]  # "an integer >= 1"
Seed = Annotated[int, Field(ge=0, le=INT_MAX), Expected("a non-negative integer")]
Threads = Annotated[
    int,
    Field(ge=0, le=THREADS_MAX, description="torch CPU threads (0: torch's default)"),
    Expected(f"an integer in [0, {THREADS_MAX}] (0: torch's default)"),
]
FloorDraws = Annotated[
    int,
    Field(ge=20, le=INT_MAX),
    Expected("an integer >= 20 (the 5-95% band of the floor needs at least 20 draws)"),
]
Positive = Annotated[float, Field(gt=0)]  # "a positive number"
X = typing.TypeVar("X")
NonEmpty = Annotated[list[X], Field(min_length=1)]  # NonEmpty[Int]: "a non-empty list of integers"


class ConfigError(ValueError):
    """Bad params: the message is one line naming the key, the value and what was expected."""


class DataError(ValueError):
    """A missing, unreadable or inconsistent input file: one line naming the file."""


def require(ok: bool, key: str, value, expected: str) -> None:
    """Raise ValueError('key = value: expected ...') unless ok."""
    if not ok:
        raise ValueError(f"{key} = {value!r}: expected {expected}")


# -- Errors in one line ------------------------------------------------------------------------
def describe(tp) -> str:
    """An annotation in words, with its article: 'an integer', 'a non-empty list of numbers'."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if tp is bool:
        return "true or false"
    name = _type_name(tp)
    if typing.get_origin(tp) is list:  # every list of params must have an entry
        return f"a non-empty {name}"
    return ("an " if name[0] in "aeiou" else "a ") + name


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        inner = args[0]
        if typing.get_origin(inner) is typing.Union:
            return f"list whose items are each a {_type_name(inner)}"
        return f"list of {_type_name(inner)}s"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _bound(err: dict, is_int: bool) -> str:
    """A constraint error (ge, gt, le, lt) in words: 'an integer >= 1', 'a positive number'."""
    ctx, kind = err.get("ctx") or {}, "an integer" if is_int else "a number"
    if is_int and (ctx.get("le") == INT_MAX or ctx.get("ge") == INT_MIN):
        return "an integer between -2^63 and 2^63 - 1"
    if ctx.get("ge") == 0:
        return f"a non-negative {kind[kind.index(' ') + 1 :]}"
    if ctx.get("gt") == 0:
        return f"a positive {kind[kind.index(' ') + 1 :]}"
    op = next(k for k in ("ge", "gt", "le", "lt") if k in ctx)
    return f"{kind} {dict(ge='>=', gt='>', le='<=', lt='<')[op]} {ctx[op]:g}"


def _base(tp):
    """The scalar type of an annotation: int for int, Annotated[int, ...] and list[int]."""
    while typing.get_origin(tp) in (Annotated, list):
        tp = typing.get_args(tp)[0]
    return tp


BOUNDS = {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}


def _expected(cls, err: dict) -> str:
    """What a field's error expected: its type's `Expected`, else its type or its bound in words."""
    field = cls.__pydantic_fields__[err["loc"][0]]
    out_of_int64 = (err.get("ctx") or {}).get("le") == INT_MAX or (err.get("ctx") or {}).get("ge") == INT_MIN
    expected = next((m.text for m in field.metadata if isinstance(m, Expected)), None)
    if expected and not out_of_int64:
        return expected
    if err["type"] == "finite_number":
        return "a finite number"
    if err["type"] in BOUNDS:
        is_int = _base(field.annotation) is int
        if len(err["loc"]) == 1:
            return _bound(err, is_int)
        bound = _bound(err, is_int)  # of one entry: 'an integer >= 1' -> 'a non-empty list of integers >= 1'
        rest = bound.split(" ", 2)[-1] if bound.startswith(("an integer ", "a number ")) else bound.split(" ", 1)[-1]
        return f"{describe(field.annotation)}{',' if rest.startswith('between') else ''} {rest}"
    return describe(field.annotation)


def error_line(cls, e: ValidationError, raw: dict) -> str:
    """pydantic's first error as 'key = value: expected ...' (or 'key is missing: ...',
    'key is not a known key: ...'): unknown keys first, then missing ones, then in field order."""
    names = list(cls.__pydantic_fields__)
    rank = {"unexpected_keyword_argument": 0, "missing_keyword_argument": 1, "missing_argument": 1, "missing": 1}

    def order(err):
        loc = err["loc"]
        return rank.get(err["type"], 2), names.index(loc[0]) if loc and loc[0] in names else len(names)

    err = min(e.errors(), key=order)
    if err["type"] == "value_error" and not err["loc"]:  # raised by __post_init__: already one line,
        line = str(err["ctx"]["error"])  # but with the validated value (3.0 for 3): show what the file says
        key, _, rest = line.partition(" = ")
        if key in raw and ": expected" in rest:
            return f"{key} = {raw[key]!r}: expected{rest.split(': expected', 1)[1]}"
        return line
    key = err["loc"][0]
    if err["type"] == "unexpected_keyword_argument":
        return f"{key} is not a known key: expected one of {', '.join(names)}"
    if rank.get(err["type"]) == 1:
        return f"{key} is missing: expected {describe(cls.__pydantic_fields__[key].annotation)}"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    return f"{key} = {raw.get(key, err.get('input'))!r}: expected {_expected(cls, err)}"


T = typing.TypeVar("T")


def from_section(
    cls: type[T], params: dict, section: str, source: str = "params.yaml", needs: Callable | None = None, **fixed
) -> T:
    """Build schema `cls` from params[section], or raise ConfigError (one line). Every field is
    required in the section, except those given in `fixed` by the caller (facts of the data,
    such as its dimension, rather than settings). Then `needs(cfg, params, source)`, when given:
    what the section needs of the machine and of the other sections (raises ValueError)."""
    cfg = build_section(cls, params, section, source, **fixed)
    if needs is not None and isinstance(params, dict):
        try:
            needs(cfg, params, source)
        except ValueError as e:
            raise ConfigError(f"{source}: {section}.{e}") from None
    return cfg


def build_section(cls: type[T], params: dict, section: str, source: str = "params.yaml", **fixed) -> T:
    """from_section without the needs: the section's own validation only."""
    raw = params.get(section) if isinstance(params, dict) else None
    fields = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in fixed]
    if not isinstance(raw, dict):
        got = "missing" if raw is None else repr(raw)
        raise ConfigError(f"{source}: section '{section}' is {got}: expected a mapping of {', '.join(fields)}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:  # a key the caller fixes is unknown in params too
        raise ConfigError(f"{source}: {section}.{unknown[0]} is not a known key: expected one of {', '.join(fields)}")
    for name in fields:  # fields with a default (for library use) are required in params all the same
        if name not in raw:
            raise ConfigError(
                f"{source}: {section}.{name} is missing: expected {describe(cls.__pydantic_fields__[name].annotation)}"
            )
    try:
        return cls(**raw, **fixed)
    except ValueError as e:  # one line already (schema)
        raise ConfigError(f"{source}: {section}.{e}") from None


def other(cls, params: dict, section: str, source: str, **fixed):
    """Another section built with its own validation only, or None if it is missing or invalid
    (its own stage refuses it)."""
    try:
        return build_section(cls, params, section, source, **fixed)
    except ConfigError:
        return None


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


# -- Memory: refuse absurd sizes in one line, before any work ------------------------------------
# The estimates are deliberately rough (a factor of two either way): they exist to refuse absurd
# sizes (n_train = 10^12) in one line instead of a numpy / torch allocation traceback minutes
# later; not to plan memory.
def machine_memory() -> int | None:
    """Total physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    """n bytes in binary units: '512 B', '23.5 GiB', '7.3 TiB', '2.1e+06 YiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    if n == float("inf"):
        return "more than 2^63 numbers"
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 1e4 else f"{n:.1e} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def largest_fitting(need: Callable[[int], float], upper: int, budget: float) -> int:
    """The largest x in [0, upper] with need(x) <= budget, for need increasing in x (bisection)."""
    lo, hi = 0, upper
    if need(lo) > budget:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if need(mid) <= budget else (lo, mid - 1)
    return lo


def require_memory(key: str, value, need: Callable[[int], float], what: str, unit: str = "") -> None:
    """Raise ValueError('key = value: expected at most N <unit> (<what>: about X; this machine has Y)')
    if need(value), the estimated peak bytes of a size setting, exceeds the machine's memory.
    need: bytes as a function of the value (increasing), with every other setting fixed."""
    ram = machine_memory()
    if ram is None or need(value) <= ram:
        return
    most = largest_fitting(need, value, ram)
    raise ValueError(
        f"{key} = {value!r}: expected at most {most:,}{unit} ({what}: about "
        f"{format_bytes(need(value))}; this machine has {format_bytes(ram)})"
    )


def fits(need: float) -> bool:
    ram = machine_memory()
    return ram is None or need <= ram


def require_fits(key: str, value, need: float, what: str) -> None:
    """Refuse a setting that is not one size (a list, or one of several sizes) whose memory exceeds the machine's."""
    ram = machine_memory()
    require(
        ram is None or need <= ram,
        key,
        value,
        f"smaller sizes ({what}: about {format_bytes(need)}; this machine has {format_bytes(ram or 0)})",
    )
