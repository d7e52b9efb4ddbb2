//! The images under test, built on this machine by `scripts/build-images.sh`: the same script
//! `make up` uses, so the suite tests exactly what the local stack runs. Nothing is pulled.

use std::{path::PathBuf, sync::OnceLock};

use anyhow::bail;

pub const TAG: &str = "local";
pub const SERVER: &str = "postgres-mcp";
pub const NGINX: &str = "postgres-mcp-nginx";
pub const HAPROXY: &str = "postgres-mcp-haproxy";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_path_buf()
}

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Builds (or confirms up to date) the three images, once per test process. The script serializes
/// concurrent callers with a lock, so parallel test processes are safe.
pub fn ensure_built() -> anyhow::Result<()> {
    let outcome = BUILT.get_or_init(|| {
        let script = repo_root().join("scripts/build-images.sh");
        let output = std::process::Command::new(&script)
            .env("IMAGE_TAG", TAG)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed:\n{}{}",
                script.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(message) => bail!("{message}"),
    }
}
