"""docs/params.md is generated from the params schemas (ddpm_lab/tools/params_doc.py): it is
current, it documents every params.yaml key, and a schema field without a description is refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import yaml

from ddpm_lab.runtime.params import Count, doc, schema
from ddpm_lab.tools import params_doc

ROOT = Path(__file__).resolve().parents[2]


def test_docs_params_md_is_current():
    proc = subprocess.run(
        [sys.executable, "-m", "ddpm_lab.tools.params_doc", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_every_params_key_has_one_row():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = [s if not isinstance(v, dict) else f"{s}.{k}" for s, v in params.items() for k in (v or [None])]
    rows = re.findall(r"^\| `([\w.]+)` \|", (ROOT / "docs" / "params.md").read_text(), re.M)
    assert rows == keys


def test_a_stale_page_fails_the_check_in_one_line(tmp_path, capsys):
    out = tmp_path / "params.md"
    out.write_text("# Params reference\n")
    assert params_doc.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stale" in err and params_doc.COMMAND in err
    assert params_doc.main(["--out", str(out)]) == 0  # writes it
    assert params_doc.main(["--check", "--out", str(out)]) == 0


@schema
class Undocumented:
    """A section with one field left undescribed."""

    size: Annotated[Count, doc("a documented size")] = 1
    width: Count = 2


def test_a_field_without_a_description_is_refused(monkeypatch, tmp_path, capsys):
    with pytest.raises(params_doc.MissingDescription, match=r"Undocumented\.width \(params key toy\.width\)"):
        params_doc.section_rows(Undocumented, "toy", {"size": 1, "width": 2})
    # in the page: the check fails in one line, whether or not docs/params.md is current
    monkeypatch.setitem(params_doc.gmm_params.SECTIONS, "toy", (Undocumented, None))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"toy": {"size": 1, "width": 2}}))
    assert params_doc.main(["--check", "--params", str(params), "--out", str(tmp_path / "params.md")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "width" in err and "has no description" in err


def test_choices_and_bounds_come_from_the_schema():
    from ddpm_lab.core.diffusion import DiffusionConfig
    from ddpm_lab.runtime.params import choices_of

    fields = DiffusionConfig.__pydantic_fields__
    assert choices_of(fields["schedule"]) == ["linear", "cosine"]
    assert params_doc.allowed(fields["T"]) == ">= 1"
    assert params_doc.allowed(fields["schedule"]) == "one of `linear`, `cosine`"
