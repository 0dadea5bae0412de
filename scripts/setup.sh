#!/usr/bin/env bash
# Create .venv (if missing) and install archcalc into it with the given extras.
# Usage: source scripts/setup.sh [EXTRAS]    e.g. source scripts/setup.sh test,verify
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
extras="${1:-}"
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if [[ ",$extras," == *",verify,"* ]]; then
    # PyTorch first, pinned: 2.13.0 resolves to a local CPU build here. With it installed,
    # the [verify] extra's range (torch>=2.1) installs nothing more (no multi-GB CUDA download).
    "${pip[@]}" torch==2.13.0
fi
if [[ ",$extras," == *",test,"* && ",$extras," == *",verify,"* ]]; then
    # torchvision's model code for the import tests (tests/torchvision_models.py imports it even
    # where its compiled operators do not match the CPU torch); never a dependency of archcalc.
    "${pip[@]}" --no-deps torchvision==0.28.0 || echo "torchvision not installed: its tests will skip"
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
"${pip[@]}" -e "$target"
