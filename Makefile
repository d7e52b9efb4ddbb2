# The two commands of the README, and a few helpers.
.PHONY: up down test demo build fmt bench

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

## Benchmarks: ours vs a bare-hyper ceiling vs rmcp's stateless server, reload, nginx, Postgres tools;
## writes benchmarks/results/{results.md,results.csv,throughput.svg}. Installs wrk/nginx if missing.
bench:
	cargo run --release --locked -p benchmarks --bin bench -- --out benchmarks/results

build:
	cargo build --release -p postgres-mcp

fmt:
	cargo fmt --all
