"""The generated blocks of README.md and docs/ (results, replicates and benchmark tables, quoted figures) are
what scripts/readme_results.py writes from params.yaml, metrics/ and benchmarks/: tables and numbers only,
their columns following the registries (ddpm_lab.gmm.distances.STATISTICS)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddpm_lab.gmm.distances import STATISTICS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_results.py"
INPUTS = ("README.md", "docs", "params.yaml", "metrics", "benchmarks/results", "benchmarks/replicates")


def _script():
    spec = importlib.util.spec_from_file_location("readme_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


RR = _script()


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--root", str(root)], capture_output=True, text=True)


def copy_inputs(dst_root: Path) -> Path:
    for rel in INPUTS:
        src, dst = ROOT / rel, dst_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    return dst_root


def check_in_process(root: Path, capsys) -> tuple[int, str]:
    try:
        RR.main(["--check", "--root", str(root)])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    return code, capsys.readouterr().err


def test_readme_numbers_are_what_the_script_writes():
    proc = check(ROOT)
    assert proc.returncode == 0, proc.stderr


def test_every_marker_is_a_known_block():
    """Each block's markers occur once in its file, and no page holds a marker the script does not write."""
    known = {(b.path, b.name) for b in RR.BLOCKS}
    assert len(known) == len(RR.BLOCKS)
    assert "README.md" in {b.path for b in RR.BLOCKS} and "docs/benchmarks.md" in {b.path for b in RR.BLOCKS}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        rel = page.relative_to(ROOT).as_posix()
        text = page.read_text()
        for name in set(re.findall(r"^<!-- /?([a-z0-9-]+) -->$", text, flags=re.M)):
            assert (rel, name) in known, f"{rel}: marker {name} is written by no block of {SCRIPT.name}"
    for b in RR.BLOCKS:
        text = (ROOT / b.path).read_text()
        assert text.count(b.begin) == 1 and text.count(b.end) == 1, f"{b.path}: {b.name}"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    """Every page with its blocks as the script writes them today (rendered once)."""
    return RR.render_all(ROOT)


@pytest.mark.parametrize("block", RR.BLOCKS, ids=lambda b: f"{b.path}:{b.name}")
def test_check_covers_every_block(rendered, block):
    """Any one block's text edited by hand is named stale, and only that block."""
    pages = dict(rendered)
    pages[block.path] = pages[block.path].replace(block.begin, block.begin + "\nedited by hand", 1)
    assert RR.differing(pages, rendered) == [block]
    assert RR.differing(rendered, rendered) == []


def test_check_names_a_stale_block_and_writing_restores_it(tmp_path, capsys):
    """On disk, end to end: --check fails naming the file and the block; writing makes it current again."""
    block = RR.BLOCKS[0]
    root = copy_inputs(tmp_path)  # current, as test_readme_numbers_are_what_the_script_writes checks
    page = root / block.path
    text = page.read_text()
    page.write_text(text.replace(block.begin, block.begin + "\nedited by hand", 1))
    code, err = check_in_process(root, capsys)
    assert code == 1 and block.path in err and block.begin in err and "stale" in err, err
    assert err.count("stale") == 1, err  # the other blocks are still current: only this one is named
    RR.main(["--root", str(root)])
    assert check_in_process(root, capsys)[0] == 0
    assert page.read_text() == text


def test_missing_markers_are_named(tmp_path, capsys):
    root = copy_inputs(tmp_path)
    block = next(b for b in RR.BLOCKS if b.path == "docs/benchmarks.md")
    page = root / block.path
    page.write_text(page.read_text().replace(block.end, ""))
    with pytest.raises(SystemExit, match=f"docs/benchmarks.md: expected one {block.begin}"):
        RR.main(["--check", "--root", str(root)])


def test_blocks_hold_no_prose():
    """A block holds tables, code and numbers; the sentences that read them are Markdown around its markers.
    (The hybrid-oracle block of docs/samplers.md, another page's, still writes its own sentences.)"""
    for b in RR.BLOCKS:
        if b.name == "hybrid-table":
            continue
        fenced = False
        for line in b.write(ROOT):
            fenced ^= line.startswith("```")
            assert fenced or line.startswith(("|", "```")) or not line, f"{b.path}: {b.name}: {line[:80]}"


def _sampled_block(root: Path) -> str:
    block = next(b for b in RR.BLOCKS if b.name == "results-sampled")
    return "\n".join(block.write(root))


def test_distribution_table_follows_the_registered_statistics(tmp_path):
    """The README's distribution table has a column for each statistic of STATISTICS that metrics/dist_*.json
    hold (`<name>_ratio`, `<name>_p95`), labelled by the registry, in its order; a statistic one file lacks is
    "-" in that row, and one no file holds has no column. A statistic the metrics gain makes the block stale."""
    for rel in ("metrics", "README.md", "params.yaml"):
        (shutil.copytree if (ROOT / rel).is_dir() else shutil.copy2)(ROOT / rel, tmp_path / rel)
    files = sorted((tmp_path / "metrics").glob("dist_*.json"))
    held = [s for s in STATISTICS.values() if any(f"{s.name}_ratio" in json.loads(f.read_text()) for f in files)]
    header = _sampled_block(tmp_path).splitlines()[0]
    assert [s for s in STATISTICS.values() if f"| {s.label} / floor |" in header] == held
    # one file loses a statistic: its row shows "-", the column stays
    lost, path = held[0], files[0]
    m = json.loads(path.read_text())
    del m[f"{lost.name}_ratio"], m[f"{lost.name}_p95"]
    path.write_text(json.dumps(m))
    row = next(
        line for line in _sampled_block(tmp_path).splitlines() if line.startswith(f"| {RR.LABELS[path.stem[5:]]} |")
    )
    assert row.split(" | ")[1 + held.index(lost)] == "-", row
    # every file gains a registered statistic none held: a column of its own, and the README goes stale
    new = next((s for s in STATISTICS.values() if s not in held), None)
    if new is None:
        pytest.skip("every registered statistic is already in the metrics")
    for f in files:
        m = json.loads(f.read_text())
        f.write_text(json.dumps(m | {f"{new.name}_ratio": 1.0, f"{new.name}_p95": 1.5}))
    assert f"| {new.label} / floor |" in _sampled_block(tmp_path).splitlines()[0]
    assert "1.00 (inside; p95 1.50)" in _sampled_block(tmp_path)
    text = (tmp_path / "README.md").read_text()
    block = next(b for b in RR.BLOCKS if b.name == "results-sampled")
    assert text[block.body(text)].strip() != _sampled_block(tmp_path).strip()


@pytest.mark.slow
def test_a_changed_metric_makes_the_readme_stale(tmp_path):
    """A metric feeds the README's tables, a benchmark row the docs' benchmark table: changing each makes its
    block stale (one rendering; test_check_names_a_stale_block_and_writing_restores_it checks the writing)."""
    copy_inputs(tmp_path)  # current, as test_readme_numbers_are_what_the_script_writes checks
    path = tmp_path / "metrics" / "dist_eq12.json"
    m = json.loads(path.read_text())
    m["w1_ratio"] += 0.5
    path.write_text(json.dumps(m))
    path = tmp_path / "benchmarks" / "results" / "gmm.json"
    bench = json.loads(path.read_text())
    bench["rows"][0]["measured"] = "0.1 s"
    path.write_text(json.dumps(bench))
    new = RR.render_all(tmp_path)
    stale = RR.differing({p: (tmp_path / p).read_text() for p in new}, new)
    assert {b.path for b in stale} == {"README.md", "docs/benchmarks.md"}, [b.name for b in stale]
    assert "| gmm | " + bench["rows"][0]["what"] + " | 0.1 s |" in new["docs/benchmarks.md"]
