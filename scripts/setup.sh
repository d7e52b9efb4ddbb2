#!/usr/bin/env bash
# Installs what the tests need, idempotently: a Python venv (.venv) with the MCP Python SDK, pytest
# and the deployment-kit validators. Safe to re-run; fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the kit checks and the test suites use (Debian/Ubuntu): nginx for `nginx -t` and the
# registry-free nginx image, PostgreSQL for the Postgres tool tests.
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
# PostgreSQL server binaries: the Postgres tool tests start throwaway clusters (no system service).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# libclang for bindgen: the server's pg_query crate compiles PostgreSQL's parser (libpg_query) and
# generates its bindings at build time (query_database's statement check, #13 C.12).
# Both the library and clang's own headers (stddef.h …), which bindgen needs too.
{ compgen -G '/usr/lib/llvm-*/lib/libclang.so*' && compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h'; } >/dev/null ||
  missing+=(libclang-dev)
# --- load balancers (issue #18): haproxy for `haproxy -c` (haproxy/tests/run.sh) and the registry-free
# HAProxy image; curl for both kit tests' runs and the load balancers' container health checks.
command -v haproxy >/dev/null || missing+=(haproxy)
command -v curl >/dev/null || missing+=(curl)
# --- end load balancers
# promtool (`promtool check metrics`) for server/tests/metrics_scrape.rs, which lints a real scrape,
# and (`promtool check rules` / `test rules`) for the Helm chart's alerts and dashboard (helm/tests).
command -v promtool >/dev/null || missing+=(prometheus)
# --- knowledge base relevance (issue #16) ---
# PostgreSQL 15's HTML manual: the real corpus server/tests/kb_eval.rs builds a kb.db from and scores
# search relevance on (with ../shared/search-eval/eval.py). Documentation only, ~18 MB.
[ -f /usr/share/doc/postgresql-doc-15/html/index.html ] || missing+=(postgresql-doc-15)
# --- end knowledge base relevance ---
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages may start a system nginx on port 80, a PostgreSQL cluster on 5432 and a Prometheus
  # server on 9090 that nothing here needs; the tests start their own (and use only promtool).
  $sudo service nginx stop >/dev/null 2>&1 || true
  $sudo service postgresql stop >/dev/null 2>&1 || true
  $sudo service prometheus stop >/dev/null 2>&1 || true
  $sudo service haproxy stop >/dev/null 2>&1 || true
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
requirements=(requirements-test.txt)
for kit in nginx haproxy compose helm terraform; do
  [ -f "$kit/tests/requirements.txt" ] && requirements+=("$kit/tests/requirements.txt")
done
stamp=.venv/.requirements.sha256
wanted=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  args=()
  for r in "${requirements[@]}"; do args+=(-r "$r"); done
  .venv/bin/pip install --quiet --disable-pip-version-check "${args[@]}"
  echo "$wanted" > "$stamp"
fi
