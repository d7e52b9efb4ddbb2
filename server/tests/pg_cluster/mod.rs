//! A throwaway PostgreSQL cluster for one test: `initdb` into a temp dir, `pg_ctl start` on a free
//! loopback port, removed on drop. Uses the machine's PostgreSQL binaries (Debian's `postgresql`,
//! installed by `scripts/setup.sh`); a missing installation fails the test loudly, never skips it.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster belongs to
//! the `postgres` user the Debian package creates, and its commands run through `runuser`.
#![allow(dead_code)]

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = binaries();
        let dir = tempfile::Builder::new().prefix("pgmcp-pg-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
        );
        // A port picked in advance can be taken by a parallel test before we bind it: retry.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if try_start(&bin, dir.path(), port) {
                return PgCluster { dir, bin, port };
            }
        }
        panic!(
            "PostgreSQL did not start on any of 5 ports; see {}",
            dir.path().join("log").display()
        );
    }

    /// `postgres://` URL for the superuser over TCP, TLS off (loopback).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// `postgres://` URL for `role` (any password: the cluster trusts loopback).
    pub fn url_as(&self, role: &str) -> String {
        format!(
            "postgres://{role}:secret@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Runs `file` with this PostgreSQL's `psql` as the superuser, with `-v name=value` variables;
    /// panics with psql's output when it fails.
    pub fn psql_file(&self, file: &Path, variables: &[(&str, &str)]) {
        let mut command = Command::new(self.bin.join("psql"));
        command.arg(self.url()).arg("-X").arg("-q").arg("-f").arg(file);
        for (name, value) in variables {
            command.arg("-v").arg(format!("{name}={value}"));
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "psql -f {} failed: {}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the server at once (as a crash or an outage would).
    pub fn stop(&self) {
        let _ = command(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path(&self.dir.path().join("data")),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .status();
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        assert!(
            try_start(&self.bin, self.dir.path(), self.port),
            "PostgreSQL did not restart on port {}",
            self.port
        );
    }

    /// A direct client, for seeding and for checking what a test did (or did not) change.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn try_start(bin: &Path, dir: &Path, port: u16) -> bool {
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=40",
        path(dir)
    );
    let data = dir.join("data");
    let log = dir.join("log");
    let args = [
        "-D",
        path(&data),
        "-l",
        path(&log),
        "-o",
        &options,
        "-w",
        "-t",
        "30",
        "start",
    ];
    command(bin, "pg_ctl", &args).status().unwrap().success()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The directory holding initdb and pg_ctl: `PG_BINDIR`, else the newest /usr/lib/postgresql/N/bin.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (apt-get install postgresql; scripts/setup.sh does it)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        .1
}

fn command(bin: &Path, program: &str, args: &[&str]) -> Command {
    let program = bin.join(program);
    // /proc/self belongs to the effective user: root when it is 0.
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn run(bin: &Path, program: &str, args: &[&str]) {
    let output = command(bin, program, args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
