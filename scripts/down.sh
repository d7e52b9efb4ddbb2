#!/usr/bin/env bash
# Stops the local stack started by `make up` and removes its containers and network.
# The files in ./local (tokens, users, knowledge base, certificate) are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export MCP_CONFIG_DIR="$PWD/local/config" MCP_TLS_DIR="$PWD/local/tls"
scripts/compose.sh -f compose/compose.yaml down --remove-orphans
