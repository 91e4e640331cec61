#!/usr/bin/env bash
# The main job: set up the environment, then run the whole pipeline on params.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # dvc's `cmd: python ...` must find the venv's python
dvc repro "$@"
dvc metrics show
