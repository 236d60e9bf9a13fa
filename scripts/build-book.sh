#!/usr/bin/env bash
# Build the HTML book into _build/html. Sets up .venv first. Profile: $DCGAN_LAB_PROFILE (default:
# chosen from the hardware).
#
# The chapters are executed one by one, in the order of _toc.yml, each checked cell by cell as it
# runs (scripts/book_failures.py execute): the first cell that would fail the build (an error, any
# output on stderr, a traceback or a figure printed as text) stops everything at once with
#   FAILED book/<chapter>.ipynb, cell N (code cell M): <error>
# and exit status 1 (the chapter as far as it ran is kept in _build/failed/). Then jupyter-book
# renders the executed copies (staged in _build/src, execution off) with warnings as errors; a
# warning there also fails the build. Either way no _build/html is left behind to be published.
# The notebooks in book/ are never written: they stay without outputs. At the end, a table of
# each chapter's time.
#
# DCGAN_LAB_BOOK_EXECUTE=auto (default) executes the chapters that have no stored outputs and
# checks the stored outputs of the others (CI's nbmake pass, `--overwrite`, stores them);
# DCGAN_LAB_BOOK_EXECUTE=off executes none (every chapter from its stored outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
mode=${DCGAN_LAB_BOOK_EXECUTE:-auto}
case "$mode" in auto|off) ;; *) echo "book: DCGAN_LAB_BOOK_EXECUTE must be auto or off, not $mode" >&2; exit 2 ;; esac
echo "book: profile=${DCGAN_LAB_PROFILE:-<auto>} data=${DCGAN_LAB_DATA:-<none: cache, download or embedded sample>} execute=$mode"
mkdir -p _build
rm -rf _build/html/reports _build/chapter_times.json
failed() {
  rm -rf _build/html
  echo "book: FAILED ($1); _build/html was removed so that no page with an error is published" >&2
  exit 1
}
# The live page's model (book/appendix_live.md): the reference generator as ONNX, checked against
# PyTorch with onnxruntime. Written here, not committed (the repository keeps the float16 .pt).
live_model=book/_static/live/dcgan64.onnx
if [ ! -f "$live_model" ] || [ book/reference/dcgan64-torch/generator.pt -nt "$live_model" ]; then
  python -m dcgan_lab.cli export book/reference/dcgan64-torch --onnx "$live_model"
fi
python scripts/book_failures.py execute --mode "$mode" --stage _build/src --build _build \
  || failed "a chapter failed: see the FAILED line above"
t0=$(date +%s)
set +e
jupyter-book build _build/src --path-output . -W -n --keep-going 2>&1 | tee _build/book.log
rc=${PIPESTATUS[0]}
set -e
dt=$(( $(date +%s) - t0 ))
echo "book: jupyter-book took ${dt}s"
python scripts/book_failures.py times _build --build-seconds "$dt" || true
if [ "$rc" -ne 0 ] || grep -qs "Traceback (most recent call last)\|&lt;Figure size" -r _build/html --include=*.html; then
  python scripts/book_failures.py _build || true
  failed "jupyter-book exit $rc"
fi
echo "book: open $(pwd)/_build/html/index.html"
