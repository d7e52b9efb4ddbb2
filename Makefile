# The two commands of the README, and a few helpers.
.PHONY: up down test demo build fmt

## Bring the local stack up: three instances behind nginx, a demo knowledge base, a printed token.
up:
	scripts/up.sh

## Stop the local stack.
down:
	scripts/down.sh

## Run every test (Rust suites, Python SDK conformance, deployment-kit validation).
test:
	scripts/test.sh

## One instance on localhost:8080 without Docker (quick look).
demo:
	scripts/demo.sh

build:
	cargo build --release -p postgres-mcp

fmt:
	cargo fmt --all
