# Sourced by the scripts: activate the venv and set the course's environment variables.
# shellcheck shell=bash
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DCGAN_LAB_VENV:-.venv}
case $venv in /*) ;; *) venv="$root/$venv" ;; esac  # DCGAN_LAB_VENV may be absolute or relative
# shellcheck disable=SC1091
source "$venv/bin/activate"
# 3: also the harmless "remapper failed" errors that TensorFlow's graph optimiser logs for some
# fused LeakyReLU gradients on oneDNN (dcgan_lab.tfquiet keeps its start-up notices away too)
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow}
if [ -z "${DCGAN_LAB_DATA:-}" ] && [ -d "$root/../shared/data" ]; then
  export DCGAN_LAB_DATA="$(cd "$root/../shared/data" && pwd)"
fi
