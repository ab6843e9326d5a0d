#!/usr/bin/env bash
# Set up and run the demo: a synthetic region loaded into a fresh SQLite store, served at http://127.0.0.1:8080/
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
# The web application's NHS.UK styles come from the npm registry; without them it still works, unstyled.
npm install --prefix src/sharedcare/web --no-audit --no-fund --silent || echo "npm install failed: web pages unstyled" >&2
exec .venv/bin/sharedcare demo "$@"
