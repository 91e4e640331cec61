"""Headless Chromium, with the network blocked, renders the charts of reports/index.html and of
a `dvc plots show` page: every script they need is inlined (ddpm_lab.tools.report).

Needs Debian's `chromium`: .ci/run installs it, so in CI (env CI set) these tests never skip.
UPDATE_SCREENSHOTS=1 also writes images/report.png and images/plots_offline.png (README figures).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ddpm_lab.runtime.cli import run_stage
from tests.helpers import ROOT, SCREENSHOT_RECORD, screenshot_sources

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (apt-get install -y chromium; CI installs it)",
)
OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--virtual-time-budget=5000",
]
SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"


class Resources(HTMLParser):
    """Every src / href attribute of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def external(html: str) -> list[str]:
    parser = Resources()
    parser.feed(html)
    return [u for u in parser.urls if re.match(r"\s*(https?:)?//", u, re.I)]


def chromium(page: Path, tmp_path: Path, *extra: str) -> str:
    assert CHROMIUM is not None, "chromium missing in CI: .ci/run installs it with apt-get"
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    proc = subprocess.run(
        [CHROMIUM, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dump_dom(page: Path, tmp_path: Path) -> str:
    return chromium(page, tmp_path, "--dump-dom")


def screenshot(page: Path, tmp_path: Path, name: str, size: str) -> None:
    shot = tmp_path / name
    chromium(page, tmp_path, f"--screenshot={shot}", f"--window-size={size}")
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, ROOT / "images" / name)
    record_path = ROOT / SCREENSHOT_RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record[name] = screenshot_sources(ROOT, name)  # what the picture shows (tests/unit/test_screenshots.py)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def test_report_renders_offline(tmp_path):
    page = tmp_path / "index.html"
    run_stage(
        importlib.import_module("stages.report").main,
        [
            "--params",
            str(ROOT / "params.yaml"),
            "--metrics",
            str(ROOT / "metrics"),
            "--images",
            str(ROOT / "images"),
            "--lock",
            str(ROOT / "dvc.lock"),
            "--out",
            str(page),
        ],
    )
    source = page.read_text()
    assert external(source) == [] and page.stat().st_size < 3_000_000
    dom = dump_dom(page, tmp_path)
    assert dom.count("role-mark layer_0_marks") == 3 and dom.count("role-mark layer_1_marks") == 3, (
        "loss charts not drawn"
    )
    assert dom.count("<svg") >= 3 and dom.count('src="data:image/png;base64,') == 11
    assert external(dom) == []
    if SCREENSHOTS:
        screenshot(page, tmp_path, "report.png", "1100,1400")


def test_dvc_plots_show_renders_offline(dvc_repo, tmp_path):
    """`dvc plots show` with the repository's .dvc/config (plots.html_template) on the committed loss histories."""
    dvc_repo.run(
        sys.executable, "-m", "ddpm_lab.tools.report", "--write-template", ".dvc/plots/offline.html"
    )  # as setup.sh
    dvc_repo.dvc("plots", "show", "-o", "plots_out")
    page = dvc_repo.path / "plots_out" / "index.html"
    source = page.read_text()
    assert "cdn.jsdelivr" not in source and external(source) == []
    dom = dump_dom(page, tmp_path)
    for name in ("loss_eq12.csv", "loss_eq3.csv", "images_loss.csv"):
        assert name in dom
    marks = len(re.findall(r"role-mark layer_[01]_marks", dom)) + len(re.findall(r'<canvas[^>]*class="marks"', dom))
    assert marks >= 3, "the loss charts were not drawn"
    assert external(dom) == []
    if SCREENSHOTS:
        screenshot(page, tmp_path, "plots_offline.png", "1000,1000")
