#!/usr/bin/env bash
# Run the whole test suite: the package's unit tests and, through nbmake, every chapter notebook.
# Sets up .venv first. Profile: $DCGAN_LAB_PROFILE (default smoke). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
export DCGAN_LAB_PROFILE=${DCGAN_LAB_PROFILE:-smoke}
echo "test: profile=$DCGAN_LAB_PROFILE data=${DCGAN_LAB_DATA:-<none: cache, download or embedded sample>}"
overwrite=()
# In CI the executed notebooks are kept, so that their figures can be checked below and the book
# build that follows need not run them again.
if [ "${CI:-}" = "true" ]; then overwrite=(--overwrite); fi
python -m pytest tests book --nbmake --nbmake-timeout=900 "${overwrite[@]}" -q \
  -m "not slow" -p no:cacheprovider --durations=15 "$@"
if [ "${CI:-}" = "true" ]; then
  echo "test: the executed chapters show their figures (images per chapter, no errors)"
  DCGAN_LAB_EXECUTED=1 python -m pytest tests/book/test_book_outputs.py -q -p no:cacheprovider
fi
