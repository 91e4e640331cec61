#!/usr/bin/env bash
# The test suite, slow end-to-end tests (real `dvc repro` in temporary copies) and the headless
# browser tests (Debian's chromium, installed here when missing and apt is usable) included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Benchmark-only packages (requirements-bench.txt: diffusers, for the side-by-side sampler tests), when not installed.
want=$(sed -n 's/^diffusers==\([^ #]*\).*/\1/p' requirements-bench.txt)
have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("diffusers"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
fi
want=$(sed -n 's/^ruff==\([^ #]*\).*/\1/p' requirements-dev.txt)
have=$(.venv/bin/ruff --version 2>/dev/null | cut -d' ' -f2 || true)
if [ "$have" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
fi
.venv/bin/ruff check .   # lint (pyproject.toml): any finding fails the run
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: no chromium (apt install chromium): the browser tests will skip (never under CI=true)" >&2
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest -m "" -n 2 "$@"   # every tier, on 2 workers (plain `pytest` runs the fast unit tier only)
