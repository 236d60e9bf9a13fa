#!/usr/bin/env bash
# Build the HTML book into _build/html, executing every chapter that has no stored outputs.
# Sets up .venv first. Profile: $DCGAN_LAB_PROFILE (default: chosen from the hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "book: profile=${DCGAN_LAB_PROFILE:-<auto>} data=${DCGAN_LAB_DATA:-<none: cache, download or embedded sample>}"
jupyter-book build . -W -n --keep-going
echo "book: open $(pwd)/_build/html/index.html"
