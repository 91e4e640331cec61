#!/usr/bin/env bash
# Create .venv from the pinned requirements (once; again when requirements.txt changes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi
# This package, editable (pyproject.toml): `import ddpm_lab` from anywhere and the `ddpm-lab` command.
# --no-deps: requirements.txt is the lock; --no-build-isolation: the venv's setuptools, no download.
if [ ! -x .venv/bin/ddpm-lab ] || ! cmp -s pyproject.toml .venv/.pyproject.toml; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  cp pyproject.toml .venv/.pyproject.toml
fi
# The offline page of `dvc plots show` / `dvc plots diff` (.dvc/config plots.html_template): generated, git-ignored.
if [ ! -s .dvc/plots/offline.html ] || [ requirements.txt -nt .dvc/plots/offline.html ]; then
  .venv/bin/python -m ddpm_lab.tools.report --write-template .dvc/plots/offline.html
fi
