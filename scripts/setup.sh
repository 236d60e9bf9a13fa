#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install dcgan-lab with every extra.
# Used by build-book.sh, test.sh and .ci/run; safe to run again (it reinstalls only when
# pyproject.toml changed). Variables: DCGAN_LAB_VENV (default .venv), PYTHON (default python3),
# TORCH_SPEC (default torch==2.13.0: the CPU wheel; on a CUDA machine use e.g. "torch").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DCGAN_LAB_VENV:-.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.dcgan-lab-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ${TORCH_SPEC:-torch==2.13.0} and dcgan-lab[all] into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
  "$venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  "$venv/bin/python" -m pip install -q -e ".[all]"
  touch "$stamp"
fi
echo "setup: $venv ready ($(du -sh "$venv" | cut -f1))"
