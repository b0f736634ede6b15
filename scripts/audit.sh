#!/usr/bin/env bash
# pip-audit of the pinned dependencies (constraints.txt) against PyPI's vulnerability data,
# when that service answers: this workplace's package mirror serves installs but not
# PyPI's per-release JSON API, and OSV is unreachable, so there it says so and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBE=https://pypi.org/pypi/pip/24.0/json  # what pip-audit asks PyPI, for a known release

if ! curl -fsS -o /dev/null --max-time 15 "$PROBE" 2>/dev/null; then
  echo "audit: not run: PyPI's vulnerability API ($PROBE) does not answer here" >&2
  exit 0
fi
exec .venv/bin/pip-audit --requirement constraints.txt --no-deps --disable-pip \
  --progress-spinner off --strict
