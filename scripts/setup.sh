#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install dcgan-lab with every extra.
# Used by build-book.sh, test.sh and .ci/run; safe to run again (it reinstalls only when
# pyproject.toml changed, or when the CPU/GPU choice changed).
#
#   bash scripts/setup.sh           # CPU: torch==2.13.0 (the CPU wheel here) + tensorflow-cpu
#   bash scripts/setup.sh --gpu     # NVIDIA GPU: CUDA torch + tensorflow[and-cuda] (same as
#   DCGAN_LAB_GPU=1 bash scripts/setup.sh       the variable)
#
# Variables: DCGAN_LAB_VENV (default .venv), PYTHON (default python3), DCGAN_LAB_GPU (1 = --gpu),
# TORCH_SPEC (default torch==2.13.0: on Linux the default index's torch==2.13.0 is the CUDA
# build, which --gpu wants; a CPU machine with a CPU wheel index or --find-links gets the CPU
# wheel). --gpu installs the extras torch,gpu,book,test: `gpu` is tensorflow[and-cuda] and keras
# (the CUDA libraries come as pip packages), instead of `keras`'s tensorflow-cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=${DCGAN_LAB_GPU:-0}
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --cpu) gpu=0 ;;
    *) echo "setup: unknown argument $arg (use --gpu or --cpu)" >&2; exit 2 ;;
  esac
done
case "$gpu" in 1|true|yes) mode=gpu; extras="torch,gpu,book,test" ;; *) mode=cpu; extras="all" ;; esac
venv=${DCGAN_LAB_VENV:-.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.dcgan-lab-installed"
old=$(cat "$stamp" 2>/dev/null || true)
old=${old:-cpu}  # stamps of earlier versions are empty: they were CPU installs
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$old" != "$mode" ]; then
  echo "setup: installing ${TORCH_SPEC:-torch==2.13.0} and dcgan-lab[$extras] into $venv ($mode)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
  "$venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  # tensorflow-cpu and tensorflow both provide the `tensorflow` module: when switching, remove
  # the other one first
  if [ "$mode" = gpu ]; then
    "$venv/bin/python" -m pip uninstall -q -y tensorflow-cpu 2>/dev/null || true
  elif [ "$old" = gpu ]; then
    "$venv/bin/python" -m pip uninstall -q -y tensorflow 2>/dev/null || true
  fi
  "$venv/bin/python" -m pip install -q -e ".[$extras]"
  echo "$mode" > "$stamp"
fi
echo "setup: $venv ready ($mode, $(du -sh "$venv" | cut -f1))"
