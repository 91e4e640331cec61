"""The package's folders are its layers, and imports point one way only:
tools -> gmm / images -> core -> runtime. Neither branch imports the other."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, imports

ALLOWED = {  # layer -> the layers its modules may import (lazy imports included)
    "runtime": {"runtime"},
    "core": {"core", "runtime"},
    "gmm": {"gmm", "core", "runtime"},
    "images": {"images", "core", "runtime"},
    "tools": {"tools", "gmm", "images", "core", "runtime"},
}
MODULES = sorted(p for p in (ROOT / "ddpm_lab").rglob("*.py") if p.name != "__init__.py")


def test_every_module_lives_in_a_layer():
    assert {p.relative_to(ROOT / "ddpm_lab").parts[0] for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_the_layers(path):
    layer = path.relative_to(ROOT / "ddpm_lab").parts[0]
    used = {f.relative_to(ROOT).parts for f in imports(path)}
    assert all(parts[0] == "ddpm_lab" for parts in used), f"{path.name} imports stages/: {sorted(used)}"
    wrong = sorted("/".join(p) for p in used if p[1] not in ALLOWED[layer])
    assert not wrong, f"{layer} may import only {sorted(ALLOWED[layer])}, but {path.name} imports {wrong}"
