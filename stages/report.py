"""Stage report: the whole study in one self-contained, offline HTML file -> reports/index.html.

Reads the figures (images/), the headline and detailed metrics and loss histories (metrics/),
params.yaml (all of it, shown as is), and for provenance the git commit and dvc.lock (the
md5 of every upstream output; dvc.lock is read, not a declared dep: DVC rewrites it after
each stage, so as a dep the report would always be stale). The page inlines the figures as
data URIs and the Vega-Lite JavaScript (ddpm_lab.tools.report), so it needs no network.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpm_lab.tools import report
from ddpm_lab.gmm.names import ALL_MODELS
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import DataError
from ddpm_lab.runtime.io import load_params, read_csv, read_json, write_outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", default="metrics", type=Path)
    ap.add_argument("--images", default="images", type=Path)
    ap.add_argument("--lock", default="dvc.lock", type=Path)
    ap.add_argument("--out", default="reports/index.html", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    m = args.metrics
    gmm_headline = {k: read_json(m / f"dist_{k}.json") for k in ALL_MODELS}
    gmm_details = {k: read_json(m / "details" / f"dist_{k}.json") for k in ALL_MODELS}
    losses = {name: read_csv(m / name, ["step", "loss"]).to_dict("records") for name, _ in report.LOSSES}
    figures = {}
    for name, _ in report.FIGURES:
        if not (args.images / name).is_file():
            raise DataError(f"{args.images / name}: no such file: run the stage that writes it (dvc repro)")
        figures[name] = report.image_data_uri(args.images / name)
    page = report.build_report(
        params=params,
        gmm_headline=gmm_headline,
        gmm_details=gmm_details,
        images_headline=read_json(m / "images.json"),
        images_details=read_json(m / "details" / "images.json"),
        losses=losses,
        figures=figures,
        commit=report.git_commit(Path(args.params).resolve().parent),
        hashes=report.lock_hashes(args.lock),
        versions=report.package_versions(),
    )
    data = page.encode()
    write_outputs({args.out: data})
    print(f"report: {len(data) / 1e6:.2f} MB, {len(figures)} figures, {len(losses)} loss curves -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
