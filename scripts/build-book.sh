#!/usr/bin/env bash
# Build the HTML book into _build/html, executing every chapter that has no stored outputs.
# Sets up .venv first. Profile: $DCGAN_LAB_PROFILE (default: chosen from the hardware).
# DCGAN_LAB_BOOK_EXECUTE=off builds from notebooks already executed in place (CI's nbmake pass).
# A chapter that fails is named with its cell, and no HTML is left behind to be published.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "book: profile=${DCGAN_LAB_PROFILE:-<auto>} data=${DCGAN_LAB_DATA:-<none: cache, download or embedded sample>}"
mkdir -p _build
config=()
if [ "${DCGAN_LAB_BOOK_EXECUTE:-auto}" = "off" ]; then
  sed 's/^\(  *execute_notebooks:\).*/\1 "off"/' _config.yml > _build/_config.noexec.yml
  config=(--config _build/_config.noexec.yml)
  echo "book: execution off (building from the stored outputs)"
fi
rm -rf _build/html/reports
# The live page's model (book/appendix_live.md): the reference generator as ONNX, checked against
# PyTorch with onnxruntime. Written here, not committed (the repository keeps the float16 .pt).
live_model=book/_static/live/dcgan64.onnx
if [ ! -f "$live_model" ] || [ book/reference/dcgan64-torch/generator.pt -nt "$live_model" ]; then
  python -m dcgan_lab.cli export book/reference/dcgan64-torch --onnx "$live_model"
fi
t0=$(date +%s)
set +e
jupyter-book build . -W -n --keep-going "${config[@]}" 2>&1 | tee _build/book.log
rc=${PIPESTATUS[0]}
set -e
echo "book: jupyter-book took $(( $(date +%s) - t0 ))s"
if [ "$rc" -ne 0 ] || grep -qs "Traceback (most recent call last)\|&lt;Figure size" -r _build/html --include=*.html; then
  python scripts/book_failures.py _build || true
  rm -rf _build/html
  echo "book: FAILED (exit $rc); _build/html was removed so that no page with an error is published" >&2
  exit 1
fi
echo "book: open $(pwd)/_build/html/index.html"
