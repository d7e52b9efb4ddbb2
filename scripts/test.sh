#!/usr/bin/env bash
# Runs every test of the project: the Rust suites (unit, in-process HTTP, conformance with the
# official Python MCP SDK and rmcp's client, and the Docker integration suite when present) and the
# deployment-kit validations. Installs what it needs first (scripts/setup.sh). Exit code 0 = all green.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export TEST_PYTHON="$PWD/.venv/bin/python"

status=0
run() {
  local name=$1; shift
  echo
  echo "=== $name: $*"
  if "$@"; then echo "=== $name: ok"; else echo "=== $name: FAILED"; status=1; fi
}

for kit in nginx haproxy compose helm terraform; do
  if [ -x "$kit/tests/run.sh" ]; then
    run "$kit" env PYTHON="$TEST_PYTHON" "$kit/tests/run.sh"
  fi
done

# The integration suite's images, built here rather than inside its first test: a cold release build
# of the server (PostgreSQL's parser included) can take longer than one test's timeout on 2 cores.
# The suite then finds them up to date (same script, same tag).
if docker info >/dev/null 2>&1; then
  run images env IMAGE_TAG=local scripts/build-images.sh
fi

# Lints and formatting, as the tree is kept: a warning fails the run like a test (they had crept in
# unseen while only the tests ran).
run lint cargo clippy --workspace --all-targets --locked -- -D warnings
run fmt cargo fmt --all --check

rm -f target/integration-report.md
if cargo nextest --version >/dev/null 2>&1; then
  run rust cargo nextest run --workspace --no-fail-fast --profile ci
else
  run rust cargo test --workspace --no-fail-fast
fi

if [ -s target/integration-report.md ]; then
  echo
  echo "=== integration report (scenario | measured)"
  cat target/integration-report.md
fi

exit $status
