"""dvc.yaml lists, for every stage, exactly the code it runs: its script and the transitive
closure of its imports within ddpm_lab/ and stages/ (so an edit reruns what it affects, and only that)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.helpers import ROOT, closure, module_file

# A foreach stage (sample@eq12, ...) is checked once: every item runs the same script.
STAGES = {n: s.get("do", s) for n, s in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_equal_its_import_closure(stage):
    spec = STAGES[stage]
    module = re.search(r"python -m (stages\.\w+)", spec["cmd"]).group(1)
    want = closure(module_file(module))
    listed = {d for d in spec["deps"] if d.endswith(".py")}
    assert listed == want, (
        f"{stage}: listed but not imported {sorted(listed - want)}; imported but not listed {sorted(want - listed)}"
    )


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
