#!/usr/bin/env bash
# Create .venv (if missing) and install archcalc into it with the given extras.
# Usage: source scripts/setup.sh [EXTRAS]    e.g. source scripts/setup.sh test
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
extras="${1:-}"
target="."
[ -n "$extras" ] && target=".[$extras]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
