"""Write docs/params.md, the reference of every params.yaml key, from the params schemas.

    python -m ddpm_lab.tools.params_doc           # (re)writes docs/params.md
    python -m ddpm_lab.tools.params_doc --check   # exit 1, one line, when docs/params.md is stale

Each key is a field of its section's schema (ddpm_lab/runtime/params.py; GMM sections in
ddpm_lab/gmm/params.py's SECTIONS, image sections in ddpm_lab/images/sections.py's SECTIONS):
its type and its bounds come from the annotation, its choices and description from the field's
`doc(...)`, its default from the schema, and its value from params.yaml. The description lives
only in the schema; a field without one is refused (MissingDescription), so the page cannot
leave a key out. The top-level `replicate` is described by ddpm_lab/runtime/seeds.py.
tests/unit/test_params_doc.py runs the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import sys
import typing
from pathlib import Path

import annotated_types
import yaml
from pydantic.fields import FieldInfo

from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.images import params as images_needs
from ddpm_lab.images import sections as images_params
from ddpm_lab.runtime import seeds
from ddpm_lab.runtime.params import INT_MAX, INT_MIN, choices_of

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
OUT = ROOT / "docs" / "params.md"
COMMAND = "python -m ddpm_lab.tools.params_doc"


class MissingDescription(ValueError):
    """A schema field without a description: `name: Annotated[T, doc("...")]` gives it one."""


def schemas() -> dict[str, tuple[type, str | None]]:
    """section -> (its schema, the name of the function that checks its needs, or None), both branches."""
    out = {s: (cls, needs.__name__ if needs else None) for s, (cls, needs) in gmm_params.SECTIONS.items()}
    for s, cls in images_params.SECTIONS.items():
        needs = images_needs.NEEDS.get(s)
        out[s] = (cls, needs.__name__ if needs else None)
    return out


# -- The cells of a row, in words -----------------------------------------------------------------
NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


def _strip(tp):
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _plural(tp) -> str:
    tp = _strip(tp)
    if typing.get_origin(tp) is typing.Union:
        return " or ".join(_plural(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"lists of {_plural(typing.get_args(tp)[0])}"
    return NAMES.get(tp, getattr(tp, "__name__", str(tp))) + "s"


def type_words(tp) -> str:
    """'integer', 'number or null', 'list of integers', 'list of numbers or lists of numbers'."""
    tp = _strip(tp)
    if typing.get_origin(tp) is typing.Union:
        return " or ".join(type_words(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"list of {_plural(typing.get_args(tp)[0])}"
    return NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _constraints(metadata) -> list:
    """annotated_types constraints in metadata, with those of nested FieldInfos."""
    out = []
    for m in metadata:
        out.extend(_constraints(m.metadata) if isinstance(m, FieldInfo) else [m])
    return out


def _number(x) -> str:
    if x == INT_MAX:
        return "2^63 - 1"
    return f"{x:g}" if isinstance(x, float) else str(x)


def bounds(metadata) -> str:
    """The bounds of an annotation in words: '>= 1', '[0, 1024]', '> 0' (int64's own are left out)."""
    found = {}
    for c in _constraints(metadata):
        for kind in ("ge", "gt", "le", "lt"):
            if isinstance(c, getattr(annotated_types, kind.capitalize())):
                found[kind] = getattr(c, kind)
    if found.get("ge") == INT_MIN:
        del found["ge"]
    if found.get("le") == INT_MAX:
        del found["le"]
    low = ("[", found["ge"]) if "ge" in found else ("(", found["gt"]) if "gt" in found else None
    high = (found["le"], "]") if "le" in found else (found["lt"], ")") if "lt" in found else None
    if low and high:
        return f"{low[0]}{_number(low[1])}, {_number(high[0])}{high[1]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {_number(low[1])}"
    if high:
        return f"{'<=' if high[1] == ']' else '<'} {_number(high[0])}"
    return ""


def allowed(field: FieldInfo) -> str:
    """What the annotation and the field's choices allow: 'non-empty; each >= 1', 'one of a, b'."""
    parts = []
    if any(isinstance(c, annotated_types.MinLen) and c.min_length == 1 for c in _constraints(field.metadata)):
        parts.append("non-empty")
    own = bounds(field.metadata)
    if own:
        parts.append(own)
    tp = _strip(field.annotation)
    is_list = typing.get_origin(tp) is list
    if is_list:
        item = typing.get_args(tp)[0]
        each = bounds(typing.get_args(item)[1:]) if typing.get_origin(item) is typing.Annotated else ""
        if each:
            parts.append(f"each {each}")
    choices = choices_of(field)
    if choices:
        parts.append(("each one of " if is_list else "one of ") + ", ".join(f"`{c}`" for c in choices))
    return "; ".join(parts)


def value_text(value) -> str:
    """A value as params.yaml writes it (YAML flow style), in a code span."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False).strip()
    return f"`{text.removesuffix('...').strip()}`"


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "none"
    return value_text(field.get_default(call_default_factory=True))


def prose(text: str) -> str:
    """Text for a table cell or a paragraph: whitespace collapsed; outside code spans, what
    Markdown would read as markup escaped: `*` (eps* twice is no emphasis), `|` (a table cell),
    `_` at the edge of a word (beta~_t; x_0 inside a word is left as it is), `<` before a letter."""
    text = " ".join(text.split())
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        part = re.sub(r"([\\*|])", r"\\\1", parts[i])
        part = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", part)
        parts[i] = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", part)
    return "`".join(parts)


def description(cls: type, section: str, name: str) -> str:
    field = cls.__pydantic_fields__[name]
    if not field.description:
        raise MissingDescription(
            f"{cls.__module__}.{cls.__qualname__}.{name} (params key {section}.{name}) has no description: "
            f'give it one in the schema, {name}: Annotated[..., doc("...")]'
        )
    return field.description


def section_rows(cls: type, section: str, values: dict) -> list[list[str]]:
    """One row per params key of the section: key, type, allowed, schema default, params.yaml value,
    description. Raises MissingDescription for a field of the schema (params key or not) without one."""
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    descriptions = {name: description(cls, section, name) for name in fields}
    rows = []
    for name in values:
        field = cls.__pydantic_fields__[name]
        rows.append(
            [
                f"`{section}.{name}`",
                type_words(field.annotation),
                allowed(field),
                default_text(field),
                value_text(values[name]),
                prose(descriptions[name]),
            ]
        )
    return rows


def _table(rows: list[list[str]]) -> list[str]:
    head = ["Key", "Type", "Allowed", "Schema default", "params.yaml", "Description"]
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _module_path(cls: type) -> str:
    return cls.__module__.replace(".", "/") + ".py"


def replicate_section(value) -> list[str]:
    body = inspect.cleandoc(seeds.__doc__).split("\n\n", 1)[1]
    row = ["`replicate`", "integer", f"[0, {seeds.MAX_REPLICATE}]", "none", value_text(value), prose(body)]
    return ["## `replicate`", "", "The top-level scalar of ddpm_lab/runtime/seeds.py (`read_replicate`).", ""] + _table(
        [row]
    )


def render(params: dict) -> str:
    """docs/params.md for params (params.yaml's contents)."""
    known = schemas()
    leaves = sum(len(v) if isinstance(v, dict) else 1 for v in params.values())
    lines = [
        "# Params reference",
        "",
        "<!-- Written by `" + COMMAND + "` from the params schemas and params.yaml: edit those, "
        "not this page (tests/unit/test_params_doc.py checks it is current). -->",
        "",
        f"Every key of `params.yaml` ({leaves} of them), section by section, in the file's order. Each section is "
        "one schema (ddpm_lab/runtime/params.py), defined beside the component it configures; this page is "
        "generated from the schemas' field descriptions, so they are the one place to document a key.",
        "",
        '- **Type**: strict, as `params.yaml` writes it: no `"3"` for 3, no `true` for 1, no `3.0` for an '
        "integer; NaN and infinities are refused; every integer fits int64 (-2^63 to 2^63 - 1).",
        "- **Allowed**: the bounds and choices that the schema states; further rules between keys and sections "
        "(and the memory they need on this machine) are in the description and in each section's needs.",
        "- **Schema default**: the default for library use. Every key is required in `params.yaml` all the "
        "same, and an unknown key is refused, each with one line naming the key, the value and what was "
        "expected (`ddpm-lab preflight` checks a whole file before any work).",
        "- **params.yaml**: the value of the study.",
        "",
    ]
    for section, values in params.items():
        if section == "replicate":
            lines += replicate_section(values) + [""]
            continue
        if section not in known:
            raise MissingDescription(f"params.yaml: section {section} has no schema to document it")
        cls, needs = known[section]
        branch = "the GMM branch" if section in gmm_params.SECTIONS else "the image branch"
        intro = f"Schema `{cls.__name__}` ({_module_path(cls)}), read by {branch}."
        if needs:
            where = "ddpm_lab/gmm/params.py" if section in gmm_params.SECTIONS else "ddpm_lab/images/params.py"
            intro += f" Also checked against the machine and the other sections: `{needs}` ({where})."
        fixed = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values]
        lines += [f"## `{section}`", "", prose(inspect.cleandoc(cls.__doc__ or "")), "", intro, ""]
        lines += _table(section_rows(cls, section, values))
        if fixed:
            lines += [
                "",
                "Not in `params.yaml`, taken from the data: "
                + "; ".join(f"`{n}`: {prose(description(cls, section, n))}" for n in fixed)
                + ".",
            ]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/params.md differs from what this would write")
    ap.add_argument("--params", type=Path, default=PARAMS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        text = render(yaml.safe_load(args.params.read_text()))
    except MissingDescription as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    current = args.out.read_text() if args.out.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.out}: stale (the params schemas or params.yaml changed): run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text)
        print(f"{args.out}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
