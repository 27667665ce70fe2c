#!/usr/bin/env bash
# The README's demo command: install aux-secrets into .venv and run its built-in demo.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/aux-secrets demo "$@"
