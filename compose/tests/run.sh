#!/usr/bin/env bash
# Validates the Compose files with Compose itself (`docker compose config`), for every variant, and
# checks what matters in the merged result. Called as PYTHON=/path/to/venv/python compose/tests/run.sh
# with compose/tests/requirements.txt installed into that Python.
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python3}" -m pytest -q test_compose.py
