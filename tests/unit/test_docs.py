"""The reference pages (docs/, mkdocs.yml) build with `mkdocs build --strict`, and the README stays a quickstart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 220


def _mkdocs() -> Path:
    """The mkdocs next to this interpreter (the venv's, pinned in requirements-dev.txt); skip if absent, but
    never under CI."""
    exe = Path(sys.executable).parent / ("mkdocs.exe" if os.name == "nt" else "mkdocs")
    if not exe.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{exe} is missing, and under CI the docs must build: "
                "pip install -r requirements-dev.txt (scripts/test.sh does)"
            )
        pytest.skip(
            f"mkdocs is not installed next to {sys.executable} "
            "(pip install -r requirements-dev.txt, as scripts/test.sh does)"
        )
    return exe


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's end-of-life banner: not a build warning
    return subprocess.run(
        [
            str(_mkdocs()),
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(root / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = build(ROOT, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    # every page of docs/ was built (the nav names them all; strict mode fails on one left out)
    for page in sorted((ROOT / "docs").glob("*.md")):
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), f"{page.name} was not built"


@pytest.mark.parametrize(
    "bad", ["[gone](no-such-page.md)", "[gone](pipeline.md#no-such-heading)", "[outside](../README.md)"]
)
def test_a_broken_link_fails_the_build(tmp_path, bad):
    """mkdocs.yml really is strict: a link to a missing page or anchor, or out of docs/, fails the build."""
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + f"\nSee {bad}.\n")
    proc = build(tmp_path, tmp_path / "site")
    assert proc.returncode != 0, proc.stderr


def test_readme_is_a_quickstart():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference material into docs/"
    )
