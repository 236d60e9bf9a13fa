#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install dcgan-lab with every extra, at
# the exact versions of constraints.txt (the lock). Used by build-book.sh, test.sh and .ci/run;
# safe to run again (it reinstalls only when pyproject.toml or constraints.txt changed, or when
# the CPU/GPU choice changed).
#
#   bash scripts/setup.sh           # CPU: torch==2.13.0 (the CPU wheel here) + tensorflow-cpu
#   bash scripts/setup.sh --gpu     # NVIDIA GPU: CUDA torch + tensorflow[and-cuda] (same as
#   DCGAN_LAB_GPU=1 bash scripts/setup.sh       the variable)
#   bash scripts/setup.sh --relock  # move the lock forward: the newest versions pyproject.toml
#                                   # allows, resolved in a scratch venv, written to
#                                   # constraints.txt; then .venv is reinstalled from it
#
# Variables: DCGAN_LAB_VENV (default .venv), PYTHON (default python3), DCGAN_LAB_GPU (1 = --gpu),
# TORCH_SPEC (default: the lock's torch line, torch==2.13.0: on Linux the default index's
# torch==2.13.0 is the CUDA build, which --gpu wants; a CPU machine with a CPU wheel index or
# --find-links gets the CPU wheel). --gpu installs the extras torch,gpu,book,test: `gpu` is
# tensorflow[and-cuda] and keras (the CUDA libraries come as pip packages), instead of `keras`'s
# tensorflow-cpu.
#
# The lock and the GPU: it holds the CPU set. Its torch line is installed as TORCH_SPEC (torch
# 2.13.0 matches the CPU and the CUDA wheel alike) and with --gpu its tensorflow-cpu line becomes
# tensorflow at the same version; the CUDA packages that only the GPU set needs are not in it and
# are left to pip. On a Python other than the lock's (its `# python:` line) the lock is skipped,
# with a note: pip then picks the newest versions that pyproject.toml allows.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=${DCGAN_LAB_GPU:-0}
relock=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --cpu) gpu=0 ;;
    --relock) relock=1 ;;
    *) echo "setup: unknown argument $arg (use --gpu, --cpu or --relock)" >&2; exit 2 ;;
  esac
done
case "$gpu" in 1|true|yes) mode=gpu; extras="torch,gpu,book,test" ;; *) mode=cpu; extras="all" ;; esac
venv=${DCGAN_LAB_VENV:-.venv}
python=${PYTHON:-python3}
lock=constraints.txt
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

if [ "$relock" = 1 ]; then
  # Resolve [all] afresh, without the lock, in a scratch venv, and write its versions as the lock.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  echo "setup: resolving the newest versions pyproject.toml allows (scratch venv in $scratch)"
  "$python" -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install -q --upgrade pip
  "$scratch/venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  "$scratch/venv/bin/python" -m pip install -q -e ".[all]"
  {
    echo "# The lock: the exact version of every package that scripts/setup.sh installs (the CPU"
    echo "# set: dcgan-lab[all] with torch and tensorflow-cpu), for pip's -c (constraints). Used by"
    echo "# scripts/setup.sh, and so by CI, and by environment.yml's pip section."
    echo "# Made with: python -m pip freeze --exclude-editable in a venv that setup.sh made, without"
    echo "# dcgan-lab itself, without GPU-only packages (nvidia-*, triton), and with torch's local"
    echo "# label (+cpu) dropped: torch==X matches the CPU and the CUDA wheel alike."
    echo "# Move it forward (newest versions pyproject.toml allows; torch stays TORCH_SPEC):"
    echo "#   bash scripts/setup.sh --relock"
    echo "# then run the tests and commit constraints.txt."
    echo "# python: $(py_version "$scratch/venv/bin/python")"
    "$scratch/venv/bin/python" -m pip freeze --exclude-editable \
      | grep -v -i -E '^(dcgan[-_]lab|nvidia[-_]|triton)' \
      | sed -E 's/^(torch==[^+]+)\+.*/\1/'
  } > "$lock.new"
  mv "$lock.new" "$lock"
  echo "setup: wrote $lock ($(grep -c '^[^#]' "$lock") packages); reinstalling $venv from it"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.dcgan-lab-installed"
old=$(head -n 1 "$stamp" 2>/dev/null || true)
old=${old:-cpu}  # stamps of earlier versions are empty: they were CPU installs
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ] \
   || [ "$old" != "$mode" ]; then
  # The lock as pip gets it: without torch (installed as TORCH_SPEC, by default the lock's line);
  # with --gpu, tensorflow-cpu==V becomes tensorflow==V.
  constraints="$venv/.dcgan-lab-constraints.txt"
  lock_python=$(sed -n 's/^# python: *//p' "$lock" 2>/dev/null || true)
  venv_python=$(py_version "$venv/bin/python")
  locked=()
  if [ "$lock_python" = "$venv_python" ]; then
    grep -v -i '^torch==' "$lock" \
      | if [ "$mode" = gpu ]; then sed -E 's/^tensorflow[-_]cpu==/tensorflow==/'; else cat; fi \
      > "$constraints"
    locked=(-c "$constraints")
    lock_note="locked by $lock"
  else
    echo "setup: note: $lock was made on Python $lock_python and this is $venv_python; installing" \
         "without it (the newest versions pyproject.toml allows)"
    lock_note="not locked: Python $venv_python, the lock is for $lock_python"
  fi
  torch_spec=${TORCH_SPEC:-$(grep -i -m 1 '^torch==' "$lock" 2>/dev/null || echo "torch==2.13.0")}
  echo "setup: installing $torch_spec and dcgan-lab[$extras] into $venv ($mode, $lock_note)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
  "$venv/bin/python" -m pip install -q ${locked[@]+"${locked[@]}"} "$torch_spec"
  # tensorflow-cpu and tensorflow both provide the `tensorflow` module: when switching, remove
  # the other one first
  if [ "$mode" = gpu ]; then
    "$venv/bin/python" -m pip uninstall -q -y tensorflow-cpu 2>/dev/null || true
  elif [ "$old" = gpu ]; then
    "$venv/bin/python" -m pip uninstall -q -y tensorflow 2>/dev/null || true
  fi
  "$venv/bin/python" -m pip install -q ${locked[@]+"${locked[@]}"} -e ".[$extras]"
  printf '%s\n%s\n' "$mode" "$lock_note" > "$stamp"
fi
echo "setup: $venv ready ($mode, $(sed -n 2p "$stamp"), $(du -sh "$venv" | cut -f1))"
