"""Write the code deps of every stage in dvc.yaml from the import closure of its script.

    python scripts/gen_deps.py           # rewrite the `.py` deps of every stage
    python scripts/gen_deps.py --check   # exit 1 if dvc.yaml differs from what it would write: one line per stale stage

A stage's code is its script (`python -m stages.NAME` in its cmd) and every file of ddpm_lab/ and
stages/ that the script imports, transitively, lazy and relative imports included: an edit of one
of them reruns the stages that run it, and only those. The list is written in place of the stage's `.py`
deps, in layer order (the script, then runtime, core, gmm, images, tools; by path within a layer);
everything else in dvc.yaml (comments, the other deps, params, outs, anchors) is kept byte for
byte. A stage whose deps are an alias (`deps: *train_deps`) is checked against its anchor's list.
The test suite runs --check (tests/unit/test_deps.py).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ddpm_lab", "stages")
LAYERS = ("runtime", "core", "gmm", "images", "tools")  # ddpm_lab's folders, bottom up (tests/unit/test_layers.py)
MODULE_OF_CMD = re.compile(r"python -m (stages\.\w+)")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The repository file of a dotted module name inside PACKAGES, or None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    path = root / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


def imports(path: Path, root: Path = ROOT) -> set[Path]:
    """The project files imported by the source at path, anywhere in it (lazy and relative imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # `from . import x`, `from ..pkg import y`: from the file's own package
                package = path.relative_to(root).parent.parts
                package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*package, *([module] if module else [])])
            names = [module] * bool(module) + [f"{module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            f = module_file(name, root)
            if f is not None and f.name != "__init__.py":
                found.add(f)
    return found


def closure(start: Path, root: Path = ROOT) -> set[str]:
    """The repository files (relative paths) that the file at start imports, transitively, itself included."""
    todo, seen = [start], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(imports(f, root) - seen)
    return {f.relative_to(root).as_posix() for f in seen}


def _order(script: str):
    def key(path: str) -> tuple:
        parts = path.split("/")
        if path == script:
            return (0, 0, path)
        if parts[0] == "ddpm_lab" and len(parts) > 2:
            rank = LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS)
            return (1, rank, path)
        return (2, 0, path)  # another stages/ module, or a module at ddpm_lab's top

    return key


def code_deps(module: str, root: Path = ROOT) -> list[str]:
    """The `.py` deps of a stage run as `python -m module`, in dvc.yaml's order."""
    start = module_file(module, root)
    if start is None:
        raise SystemExit(f"error: dvc.yaml: no file for module {module} under {root}")
    script = start.relative_to(root).as_posix()
    return sorted(closure(start, root), key=_order(script))


# ---- dvc.yaml, line by line (so that comments, anchors and layout stay as they are) ----

STAGE = re.compile(r"^  ([A-Za-z_][\w-]*):\s*(#.*)?$")
DEPS = re.compile(r"^(\s+)deps:\s*(?:([&*])(\w[\w-]*))?\s*(#.*)?$")
ITEM = re.compile(r"^(\s+)- (\S+?)(\s+#.*)?$")


def _stage_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """{stage: (first line, end)} of every stage under `stages:`."""
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == "stages:"), None)
    if start is None:
        raise SystemExit("error: dvc.yaml: no `stages:` section")
    heads, end = [], len(lines)
    for i in range(start + 1, len(lines)):
        ln = lines[i]
        if ln.strip() and not ln.startswith((" ", "#")):  # the next top-level key
            end = i
            break
        m = STAGE.match(ln)
        if m:
            heads.append((m.group(1), i))
    return {name: (i, heads[k + 1][1] if k + 1 < len(heads) else end) for k, (name, i) in enumerate(heads)}


def _deps_list(lines: list[str], begin: int, end: int):
    """(deps line index, anchor kind '&' / '*' / None, anchor name, [item line indices]) of a stage block."""
    for i in range(begin, end):
        m = DEPS.match(lines[i])
        if not m:
            continue
        items, j, indent = [], i + 1, None
        while j < end:
            ln = lines[j]
            item = ITEM.match(ln)
            if item and (indent is None or item.group(1) == indent):
                indent = item.group(1)
                items.append(j)
            elif ln.strip() and not ln.lstrip().startswith("#"):
                break
            j += 1
        return i, m.group(2), m.group(3), items
    return None


def generate(text: str, root: Path = ROOT) -> tuple[str, dict[str, tuple[list[str], list[str]]]]:
    """dvc.yaml's text with every stage's `.py` deps written from its import closure, and
    {stage: (listed, wanted)} for the stages whose `.py` deps change."""
    stages = yaml.safe_load(text)["stages"]
    lines = text.splitlines(keepends=True)
    blocks = _stage_blocks(lines)
    if set(blocks) != set(stages):
        raise SystemExit(f"error: dvc.yaml: could not find stages {sorted(set(stages) ^ set(blocks))} line by line")
    edits, stale, anchors = [], {}, {}
    for name, (begin, end) in blocks.items():
        spec = stages[name].get("do", stages[name])
        m = MODULE_OF_CMD.search(spec.get("cmd", ""))
        if m is None:
            raise SystemExit(f"error: dvc.yaml: stage {name}: its cmd runs no `python -m stages.NAME`")
        want = code_deps(m.group(1), root)
        found = _deps_list(lines, begin, end)
        if found is None:
            raise SystemExit(f"error: dvc.yaml: stage {name} lists no deps")
        deps_at, kind, anchor, items = found
        if kind == "*":  # an alias: the anchor's list, checked against this stage's closure
            listed = anchors.get(anchor)
            if listed is None:
                raise SystemExit(f"error: dvc.yaml: stage {name}: deps alias *{anchor} before its anchor")
            if listed != want:
                raise SystemExit(
                    f"error: dvc.yaml: stage {name}: its deps are *{anchor}, but it imports other code than "
                    f"the anchor's stage: give it a deps list of its own"
                )
            continue
        py = [j for j in items if ITEM.match(lines[j]).group(2).endswith(".py")]
        listed = [ITEM.match(lines[j]).group(2) for j in py]
        if py and py != list(range(py[0], py[0] + len(py))):
            raise SystemExit(f"error: dvc.yaml: stage {name}: keep its .py deps together, one after another")
        if kind == "&":
            anchors[anchor] = want
        if listed != want:
            stale[name] = (listed, want)
            if items:
                indent = ITEM.match(lines[items[0]]).group(1)
            else:
                indent = DEPS.match(lines[deps_at]).group(1) + "  "
            comments = {ITEM.match(lines[j]).group(2): ITEM.match(lines[j]).group(3) or "" for j in py}
            new = [f"{indent}- {p}{comments.get(p, '')}\n" for p in want]
            at = py[0] if py else (items[0] if items else deps_at + 1)
            edits.append((at, at + len(py), new))
    for a, b, new in sorted(edits, reverse=True):
        lines[a:b] = new
    return "".join(lines), stale


def _line(name: str, listed: list[str], want: list[str]) -> str:
    extra, missing = sorted(set(listed) - set(want)), sorted(set(want) - set(listed))
    what = [f"listed but not imported {extra}"] * bool(extra) + [f"imported but not listed {missing}"] * bool(missing)
    return (
        f"dvc.yaml: stage {name}: its .py deps are not the import closure of its script "
        f"({'; '.join(what) or 'another order'}): run python scripts/gen_deps.py"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml differs from what this would write")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository (dvc.yaml, ddpm_lab/, stages/)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    path = root / "dvc.yaml"
    text = path.read_text()
    new, stale = generate(text, root)
    if args.check:
        for name, (listed, want) in stale.items():
            print(_line(name, listed, want), file=sys.stderr)
        return 1 if stale else 0
    if new != text:
        path.write_text(new)
    for name in stale:
        print(f"dvc.yaml: stage {name}: .py deps rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
