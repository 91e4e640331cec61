"""The offline pages: the `dvc plots` HTML template and the report stage's reports/index.html."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from ddpm_lab.tools import report
from tests.helpers import stages

ROOT = Path(__file__).resolve().parents[2]
FAKE_BUNDLE = "window.vegaEmbed = function () {};"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def test_offline_template_has_plot_divs_and_no_cdn_scripts():
    page = report.offline_template(FAKE_BUNDLE)
    assert "{plot_divs}" in page and "{scripts}" not in page and FAKE_BUNDLE in page
    with pytest.raises(ValueError, match="plot_divs"):
        report.offline_template("var x = '{plot_divs}';")


def test_dvc_config_points_at_the_template_that_setup_writes():
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(r"^\s*analytics\s*=\s*false", config, re.M)
    path = re.search(r"^\s*html_template\s*=\s*(\S+)", config, re.M).group(1)
    assert (ROOT / ".dvc" / path) == ROOT / ".dvc" / "plots" / "offline.html"  # DVC joins a relative path to .dvc/
    assert "--write-template .dvc/plots/offline.html" in (ROOT / "scripts" / "setup.sh").read_text()
    assert ".dvc/plots/offline.html" in (ROOT / ".gitignore").read_text().split()


def test_loss_plots_use_the_smoothed_log_template():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    plots = {
        name: props
        for spec in stages.values()
        for entry in spec.get("plots", [])
        for name, props in entry.items()
        if name.endswith(".csv")
    }
    assert set(plots) == {"metrics/loss_eq12.csv", "metrics/loss_eq3.csv", "metrics/images_loss.csv"}
    assert all(p["template"] == "loss_smooth_log" for p in plots.values())
    template = json.loads((ROOT / ".dvc" / "plots" / "loss_smooth_log.json").read_text())
    text = json.dumps(template)
    assert all(f"<DVC_METRIC_{a}>" in text for a in ("DATA", "X", "Y"))
    assert '"symlog"' in text and '"window"' in text


def test_javascript_bundle_is_offline_and_defines_vega_embed():
    js = report.javascript_bundle()
    assert "window.vegaEmbed" in js and "</script" not in js.lower() and len(js) > 100_000


def test_loss_spec_layers_raw_and_smoothed_on_a_symlog_axis():
    rows = [{"step": i, "loss": 10.0 / (i + 1)} for i in range(50)]
    spec = report.loss_spec(rows, "t", smooth=10)
    assert spec["data"]["values"] == rows
    raw, smooth = spec["layer"]
    assert raw["encoding"]["y"]["scale"]["type"] == "symlog"
    assert smooth["transform"][0]["frame"] == [-5, 5] and smooth["encoding"]["y"]["field"] == "smoothed"


def test_git_commit_and_lock_hashes_tolerate_absence(tmp_path):
    assert report.git_commit(tmp_path) == "unknown"  # not a repository
    assert report.lock_hashes(tmp_path / "dvc.lock") == {}
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "a": {"cmd": "x", "outs": [{"path": "o.txt", "md5": "abc"}]},
                    "report": {"cmd": "y", "outs": [{"path": "reports/index.html", "md5": "def"}]},
                },
            }
        )
    )
    assert report.lock_hashes(tmp_path / "dvc.lock") == {"a": {"o.txt": "abc"}}
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", report.git_commit(ROOT))


def test_package_versions():
    v = report.package_versions(("numpy", "no-such-package-xyz"))
    assert v["numpy"] and v["no-such-package-xyz"] == "not installed"


def build_from_committed(tmp_path) -> Path:
    """Run the report stage on the committed metrics and figures into tmp_path/index.html."""
    main = stages("report").main

    out = tmp_path / "index.html"
    main(
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
            str(out),
        ]
    )
    return out


def test_report_stage_writes_one_self_contained_file(tmp_path):
    out = build_from_committed(tmp_path)
    page = out.read_text()
    assert out.stat().st_size < 3_000_000
    assert not EXTERNAL.search(page)
    assert page.count("data:image/png;base64,") == len(report.FIGURES)
    assert page.count("vegaEmbed('#loss") == len(report.LOSSES)
    for needle in (
        "W1",
        "floor p95",
        "±",
        "Frechet distance",
        "Params",
        "n_train",
        "dvc.lock",
        "torch",
        "train_eq12",
        "models/eq12.pt",
    ):
        assert needle in page, needle
    headline = json.loads((ROOT / "metrics" / "dist_eq12.json").read_text())
    assert f"{headline['w1_ratio']:.3g}" in page


def test_report_stage_names_a_missing_input(tmp_path, capsys):
    main = stages("report").main
    from ddpm_lab.runtime.cli import run_stage

    images = tmp_path / "images"
    shutil.copytree(ROOT / "images", images)
    (images / "gmm_dist.png").unlink()
    with pytest.raises(SystemExit) as e:
        run_stage(
            main,
            [
                "--params",
                str(ROOT / "params.yaml"),
                "--metrics",
                str(ROOT / "metrics"),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "r.html"),
            ],
        )
    assert e.value.code == 2 and "gmm_dist.png: no such file" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
