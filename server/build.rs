//! Sets `POSTGRES_MCP_REVISION`, the git commit the binary is built from, for `pgmcp_build_info`.
//!
//! Not `PGMCP_…`: cargo hands `rustc-env` values to the test binaries it runs too, and the server
//! refuses any `PGMCP_*` variable that is not a configuration key (a test spawning the binary would
//! inherit it).
//!
//! Taken from the environment when the builder sets it (the Docker build has no `.git` in its
//! context: `docker build --build-arg POSTGRES_MCP_REVISION=$(git rev-parse HEAD)`), else asked of git in
//! the source tree, else `unknown` (a source tarball). Re-run when the checked-out commit moves, so a
//! commit followed by `cargo build` reports the new one; nothing else about git triggers a rebuild.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=POSTGRES_MCP_REVISION");
    println!("cargo:rerun-if-changed=build.rs");
    let revision = match std::env::var("POSTGRES_MCP_REVISION") {
        Ok(revision) if !revision.trim().is_empty() => revision.trim().to_string(),
        _ => git_revision().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=POSTGRES_MCP_REVISION={revision}");
}

/// `git rev-parse HEAD`, watching the files that move when HEAD does: HEAD itself (a checkout), the
/// branch it points at (a commit) and packed-refs (a `git gc` that packs that branch).
fn git_revision() -> Option<String> {
    let revision = git(&["rev-parse", "HEAD"])?;
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        // A missing file would count as changed at every build, rebuilding the crate each time.
        if let Some(file) = git(&["rev-parse", "--git-path", path])
            && std::path::Path::new(&file).exists()
        {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    revision.chars().all(|c| c.is_ascii_hexdigit()).then_some(revision)
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
