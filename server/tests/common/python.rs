//! The Python that runs the official MCP Python SDK clients in `tests/python/`.
//!
//! The SDK runs in the project's venv (`make test` / `.ci/run` create it). Without it a test fails
//! with instructions rather than passing silently: an unproven claim of conformance is worse than a
//! red test.

use std::path::PathBuf;

/// `TEST_PYTHON`, or the project's `.venv` python.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "the MCP Python SDK is needed: run `make test` (creates .venv with `mcp`), or set TEST_PYTHON to a python with `mcp` installed"
    );
    venv
}
