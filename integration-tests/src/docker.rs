//! The few engine operations testcontainers does not offer (fixed addresses on a network, SIGKILL,
//! cleanup by label), through the `docker` CLI: it negotiates the API version with any engine.

use std::process::Command;

use anyhow::{Context, bail};

/// Runs `docker ARGS` and returns its trimmed stdout; an error carries stderr.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .context("cannot run the docker CLI")?;
    if !output.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Gives a running container a fixed address and a DNS alias on `network`, as Compose's
/// `ipv4_address` does. The engine remembers both across restarts of the container, which is what
/// nginx (resolving its upstreams once) needs.
pub fn pin_address(container: &str, network: &str, ip: &str, alias: &str) -> anyhow::Result<()> {
    docker(&["network", "disconnect", network, container])?;
    docker(&["network", "connect", "--ip", ip, "--alias", alias, network, container])?;
    Ok(())
}

/// Sends a signal to a container's main process.
pub fn signal(container: &str, signal: &str) -> anyhow::Result<()> {
    docker(&["kill", "--signal", signal, container]).map(|_| ())
}

/// Removes every container carrying `label=value`, then the network: the end of a run, also after a
/// failed test (called from `Drop`).
pub fn remove_run(label: &str, value: &str, network: &str) {
    if let Ok(ids) = docker(&["ps", "-aq", "--filter", &format!("label={label}={value}")]) {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = docker(&args);
        }
    }
    let _ = docker(&["network", "rm", network]);
}
