#!/usr/bin/env bash
# Validates the Helm chart without a helm binary or a cluster: renders every values file in values/
# with Helm v4's SDK (PyPI helm-python-sdk), runs lint --strict, checks the values schema refuses bad
# values, validates every manifest with kubernetes-validate --strict, and asserts what production
# depends on (see test_chart.py); runs promtool on the rendered PrometheusRule (check + the unit tests
# in promtool/) and on every dashboard query (test_monitoring.py; promtool from scripts/setup.sh).
# Called as PYTHON=/path/to/venv/python helm/tests/run.sh with helm/tests/requirements.txt installed
# into that Python. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
echo "helm chart: $(cd ../postgres-mcp && pwd)"
echo "values files: $(cd values && echo *.yaml)"
# -rA: one line per check in the summary, plus what the checks printed (e.g. the validator's count).
exec "$python" -m pytest -q -rA -p no:cacheprovider test_chart.py test_monitoring.py
