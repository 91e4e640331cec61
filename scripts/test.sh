#!/usr/bin/env bash
# The test suite, slow end-to-end tests (real `dvc repro` in temporary copies) included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest "$@"
