#!/usr/bin/env bash
# Set up and serve sharedcare on the embedded SQLite store at http://127.0.0.1:8080/fhir.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/sharedcare serve --db "sqlite:///data/sharedcare.db" "$@"
