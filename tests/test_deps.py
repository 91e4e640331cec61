"""dvc.yaml lists, for every stage, exactly the code it runs: its script and the transitive
closure of its imports within ddpm_lab/ and stages/ (so an edit reruns what it affects, and only that)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ddpm_lab", "stages")
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The repository file of a dotted module name inside PACKAGES, or None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    path = ROOT / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


def imports(path: Path) -> set[Path]:
    """The project files imported by the source at path, anywhere in it (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            f = module_file(name)
            if f is not None and f.name != "__init__.py":
                found.add(f)
    return found


def closure(start: Path) -> set[str]:
    todo, seen = [start], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(imports(f) - seen)
    return {str(f.relative_to(ROOT)) for f in seen}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_equal_its_import_closure(stage):
    spec = STAGES[stage]
    module = re.search(r"python -m (stages\.\w+)", spec["cmd"]).group(1)
    want = closure(module_file(module))
    listed = {d for d in spec["deps"] if d.endswith(".py")}
    assert listed == want, f"{stage}: listed but not imported {sorted(listed - want)}; imported but not listed {sorted(want - listed)}"
