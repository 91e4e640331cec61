"""The README's screenshots (images/report.png, images/plots_offline.png) are never stale: each
was taken from committed files whose md5s images/screenshots.json records, and a changed metric
makes its picture stale here, as a changed number makes the README stale (test_readme.py)."""

from __future__ import annotations

import shutil

from tests.helpers import ROOT, SCREENSHOT_RECORD, SCREENSHOT_SOURCES, stale_screenshots


def test_the_screenshots_show_todays_metrics():
    assert stale_screenshots(ROOT) == []


def test_a_changed_metric_makes_its_screenshot_stale(tmp_path):
    for rel in {p for ps in SCREENSHOT_SOURCES.values() for p in ps} | {SCREENSHOT_RECORD}:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    assert stale_screenshots(tmp_path) == []
    with (tmp_path / "metrics/loss_eq3.csv").open("a") as f:
        f.write("151,2.5\n")
    stale = stale_screenshots(tmp_path)
    assert len(stale) == 2 and all("metrics/loss_eq3.csv changed" in line for line in stale)


def test_a_comment_in_params_leaves_the_report_current_and_a_value_does_not(tmp_path):
    for rel in {p for ps in SCREENSHOT_SOURCES.values() for p in ps} | {SCREENSHOT_RECORD}:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text() + "# a comment the picture cannot show\n")
    assert stale_screenshots(tmp_path) == []
    params.write_text(params.read_text().replace("replicate: 0", "replicate: 1", 1))
    stale = stale_screenshots(tmp_path)
    assert len(stale) == 1 and "images/report.png is stale: params.yaml changed" in stale[0]
