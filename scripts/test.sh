#!/usr/bin/env bash
# The test suite, slow end-to-end tests (real `dvc repro` in temporary copies) and the headless
# browser tests (Debian's chromium, installed here when missing and apt is usable) included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every `name==version` pin of a requirements file installed at that version? (exit 1 if not)
pins_installed() {
  .venv/bin/python - "$1" <<'PY'
import importlib.metadata as md
import re
import sys

for line in open(sys.argv[1]):
    pin = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s#;]+)", line)
    if pin:
        try:
            have = md.version(pin[1])
        except md.PackageNotFoundError:
            have = None
        if have != pin[2]:
            print(f"test.sh: {sys.argv[1]}: {pin[1]} {have or 'missing'}, pinned {pin[2]}: installing", file=sys.stderr)
            sys.exit(1)
PY
}
# Benchmark-only packages (requirements-bench.txt: diffusers, for the side-by-side sampler tests) and the
# development tools (requirements-dev.txt: ruff, mkdocs-material and mkdocs), when a pin is missing or differs.
for req in requirements-bench.txt requirements-dev.txt; do
  if ! pins_installed "$req"; then
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
  fi
done
.venv/bin/ruff check .            # lint (pyproject.toml): any finding fails the run
.venv/bin/ruff format --check .   # formatting (pyproject.toml): any file ruff would rewrite fails the run
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: no chromium (apt install chromium): the browser tests will skip (never under CI=true)" >&2
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest -m "" -n 2 "$@"   # every tier, on 2 workers (plain `pytest` runs the fast unit tier only)
