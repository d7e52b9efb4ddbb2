#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: ./run.sh <seconds per target> [target...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain works: RUSTC_BOOTSTRAP lets
# it take the nightly-only flags cargo-fuzz passes. No sanitizer: the targets are safe Rust and
# the bundled C (SQLite) is not on their path, so ASan would only slow them down; debug assertions
# and overflow checks stay on. Crashes land in fuzz/artifacts/<target>/; corpora in fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:?usage: ./run.sh <seconds per target> [target...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jsonrpc tokens_yaml users_yaml)
export RUSTC_BOOTSTRAP=1
flags=(--release --debug-assertions --sanitizer none)
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    cargo fuzz run "${flags[@]}" "$target" "corpus/$target" seeds/"$target" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1
done
