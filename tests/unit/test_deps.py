"""dvc.yaml lists, for every stage, exactly the code it runs: its script and the transitive
closure of its imports within ddpm_lab/ and stages/ (so an edit reruns what it affects, and only that).
scripts/gen_deps.py writes those lists; `--check` fails when one is stale."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.helpers import GEN_DEPS, ROOT, closure, module_file

SCRIPT = ROOT / "scripts" / "gen_deps.py"

# A foreach stage (sample@eq12, ...) is checked once: every item runs the same script.
STAGES = {n: s.get("do", s) for n, s in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


def gen_deps(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True, timeout=60
    )


def test_gen_deps_check_passes_on_the_repository():
    proc = gen_deps(ROOT, "--check")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_equal_its_import_closure(stage):
    spec = STAGES[stage]
    module = re.search(r"python -m (stages\.\w+)", spec["cmd"]).group(1)
    want = closure(module_file(module))
    listed = [d for d in spec["deps"] if d.endswith(".py")]
    extra, missing = sorted(set(listed) - want), sorted(want - set(listed))
    assert not extra and not missing, f"{stage}: listed but not imported {extra}; imported but not listed {missing}"
    assert listed == GEN_DEPS.code_deps(module), f"{stage}: not in gen_deps' order (script, then layer by layer)"


@pytest.fixture
def copy_root(tmp_path):
    """dvc.yaml, ddpm_lab/ and stages/ in tmp_path: what gen_deps reads."""
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    for pkg in ("ddpm_lab", "stages"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_gen_deps_rewrites_a_stale_list_and_keeps_everything_else(copy_root):
    """A dep dropped from one stage and a module a stage starts to import (a new file, by a lazy
    relative import): --check names exactly those stages, one line each, and exits 1; the rewrite
    restores dvc.yaml byte for byte but for the new module, added in layer order, in every stage
    whose script imports it."""
    assert gen_deps(copy_root).returncode == 0  # up to date with the copied code, whatever it is now
    dvc_yaml = copy_root / "dvc.yaml"
    original = dvc_yaml.read_text()
    stages = {n: s.get("do", s) for n, s in yaml.safe_load(original)["stages"].items()}
    assert "      - ddpm_lab/images/figures.py\n" in original
    dvc_yaml.write_text(original.replace("      - ddpm_lab/images/figures.py\n", "", 1))
    (copy_root / "ddpm_lab/images/zz_new.py").write_text("X = 1\n")
    unet = copy_root / "ddpm_lab/images/unet.py"
    unet.write_text(unet.read_text() + "\n\ndef _later():\n    from . import zz_new  # noqa: F401\n")  # lazy, relative

    proc = gen_deps(copy_root, "--check")
    importers = sorted(s for s, spec in stages.items() if "ddpm_lab/images/unet.py" in spec["deps"])
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and sorted(re.findall(r"^dvc.yaml: stage (\w+):", proc.stderr, re.M)) == importers
    assert len(lines) == len(importers) and all(ln.endswith("run python scripts/gen_deps.py") for ln in lines)
    assert "imported but not listed ['ddpm_lab/images/figures.py', 'ddpm_lab/images/zz_new.py']" in proc.stderr

    assert gen_deps(copy_root).returncode == 0
    assert gen_deps(copy_root, "--check").returncode == 0
    new = "      - ddpm_lab/images/unet.py\n      - ddpm_lab/images/zz_new.py\n"
    assert dvc_yaml.read_text() == original.replace("      - ddpm_lab/images/unet.py\n", new)
    assert dvc_yaml.read_text().count(new) == len(importers)


PY_DEP = re.compile(r"^\s+- \S+\.py$")


def test_gen_deps_changes_only_py_deps_and_is_idempotent(copy_root):
    """Every line of dvc.yaml but the `.py` deps (comments, other deps, params, outs, anchors) is
    kept as it is; a second run changes nothing."""
    before = (copy_root / "dvc.yaml").read_text().splitlines()
    assert gen_deps(copy_root).returncode == 0
    after = (copy_root / "dvc.yaml").read_text()
    assert [ln for ln in after.splitlines() if not PY_DEP.match(ln)] == [ln for ln in before if not PY_DEP.match(ln)]
    proc = gen_deps(copy_root)
    assert proc.returncode == 0 and proc.stdout == "" and (copy_root / "dvc.yaml").read_text() == after


GMM_STAGES = {s for s, spec in STAGES.items() if any(d.startswith("ddpm_lab/gmm/") for d in spec["deps"])}
IMAGE_STAGES = {s for s, spec in STAGES.items() if any(d.startswith("ddpm_lab/images/") for d in spec["deps"])}


def test_the_branches_share_no_code_of_their_own():
    """No stage imports both branches: an edit in one leaves the other's stages alone."""
    assert GMM_STAGES and IMAGE_STAGES and not GMM_STAGES & IMAGE_STAGES


@pytest.mark.parametrize(
    "edited, other_branch", [("ddpm_lab/images/params.py", GMM_STAGES), ("ddpm_lab/gmm/params.py", IMAGE_STAGES)]
)
def test_editing_one_branch_params_schema_leaves_the_other_branch_up_to_date(dvc_repo, edited, other_branch):
    """`dvc status` before and after a change to one branch's params module: every stage of the
    other branch reports exactly what it reported before; the stages that import the file change."""
    import json

    def status() -> dict:
        out = json.loads(dvc_repo.dvc("status", "--json").stdout or "{}")
        return {name.split(":")[-1]: entries for name, entries in out.items()}

    before = status()
    path = dvc_repo.path / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    after = status()
    importers = {s for s, spec in STAGES.items() if edited in spec["deps"]}
    assert importers and importers.isdisjoint(other_branch)
    assert {s: after.get(s) for s in other_branch} == {s: before.get(s) for s in other_branch}
    for s in importers:  # a foreach stage: each of its items (sample@eq12, ...)
        for item in [k for k in after if k == s or k.startswith(f"{s}@")] or [s]:
            entries = after.get(item, [])
            assert any(edited in e.get("changed deps", {}) for e in entries if isinstance(e, dict)), (item, entries)
