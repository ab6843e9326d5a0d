#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# The reference data (official R4 package, examples, Synthea) sits beside the project as ../shared; a clone
# elsewhere finds it through SHAREDCARE_SHARED or the workplace's copy. Without it, the tests that need it skip.
if [ -z "${SHAREDCARE_SHARED:-}" ]; then
  for candidate in ../shared /work/shared; do
    if [ -d "$candidate/fhir" ]; then export SHAREDCARE_SHARED="$(cd "$candidate" && pwd)"; break; fi
  done
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  echo "PostgreSQL server not found; installing Debian's postgresql" >&2
  apt-get install -y -q postgresql >/dev/null || (apt-get update -q && apt-get install -y -q postgresql >/dev/null)
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "Chromium not found; installing Debian's chromium for the web browser tests" >&2
  apt-get install -y -q chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium >/dev/null)
fi
npm install --prefix src/sharedcare/web --no-audit --no-fund --silent  # nhsuk-frontend and axe-core (web tests)
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check src tests tools bench
if [ -n "${SHAREDCARE_SHARED:-}" ]; then  # regenerate the committed tables and compare
  .venv/bin/python tools/gen_definitions.py --check
  .venv/bin/python tools/gen_search_parameters.py --check
else
  echo "reference data not found: generated-table checks and reference-data tests are skipped" >&2
fi
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
