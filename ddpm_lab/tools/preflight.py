"""Check a whole params file before running anything: `ddpm-lab preflight [--params FILE]`.

Builds every section of both branches, each with its own validation and its needs (memory
estimates, constraints across sections), in pipeline order, and stops at the first bad value
with the stages' one-line error and exit status 2; prints one line and exits 0 when all are
valid. It does no work and writes nothing.

Each branch's first stage already checks all of that branch's sections before any work
(generate_gmm: ddpm_lab/gmm/params.py; prepare_images: ddpm_lab/images/params.py); no stage
imports the other branch's code (dvc.yaml lists exactly what a stage imports), so only this
tool checks both at once.
"""

from __future__ import annotations

import argparse

from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.images import sections as images_params
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.io import load_params
from ddpm_lab.runtime.seeds import read_replicate


def validate_params(params: dict, source: str = "params.yaml") -> dict:
    """Build every section of params (the GMM and the image branch) with all its checks, in
    pipeline order; raise the first ConfigError. Returns {section: config}."""
    return {
        "replicate": read_replicate(params, source),
        **gmm_params.check_all(params, source),
        **images_params.check_all(params, source),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    configs = validate_params(load_params(args.params), args.params)
    print(f"preflight: {args.params}: replicate and all {len(configs) - 1} sections valid")


if __name__ == "__main__":
    run_stage(main)
