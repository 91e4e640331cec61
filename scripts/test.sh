#!/usr/bin/env bash
# The test suite, slow end-to-end tests (real `dvc repro` in temporary copies) and the headless
# browser tests (Debian's chromium, installed here when missing and apt is usable) included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: no chromium (apt install chromium): the browser tests will skip (never under CI=true)" >&2
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest "$@"
