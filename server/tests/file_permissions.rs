//! The file commands of the real binary keep a served file readable by the servers: an existing file
//! keeps its mode, owner and group; a new one gets its kind's default; an unprivileged writer says
//! what it could not keep; `config check` names who owns an unreadable file and who is asking.
//!
//! The servers run as uid 10001 in our images. Handing files to that uid (and running the CLI as
//! it) needs root, which CI has; elsewhere those parts are skipped with a printed reason.

use std::{
    fs,
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::CommandExt,
    },
    path::Path,
    process::{Command, Output},
};

const SERVER_UID: u32 = 10001;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"));
    command.env_remove("PGMCP_CONFIG");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode_owner_group(path: &Path) -> (u32, u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// The binary as uid:gid `uid` (no supplementary groups), if that user can reach it at all.
fn cli_as(uid: u32) -> Option<Command> {
    let probe = cli().arg("--version").uid(uid).gid(uid).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        println!("skipped: uid {uid} cannot run {}", env!("CARGO_BIN_EXE_postgres-mcp"));
        return None;
    }
    let mut command = cli();
    command.uid(uid).gid(uid);
    Some(command)
}

#[test]
fn token_create_keeps_the_mode_owner_and_group_of_an_existing_tokens_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.yaml");
    postgres_mcp::auth::admin::token_create(&path, "seed", None, None).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let owner = if is_root() {
        std::os::unix::fs::chown(&path, Some(SERVER_UID), Some(SERVER_UID)).unwrap();
        (SERVER_UID, SERVER_UID)
    } else {
        println!("not root: checking that the mode is kept; owner {SERVER_UID} needs root to set up");
        let (_, uid, gid) = mode_owner_group(&path);
        (uid, gid)
    };

    let output = run(cli()
        .args(["token", "create", "--file"])
        .arg(&path)
        .args(["--name", "me"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("pgmcp_"), "{}", text(&output.stdout));
    assert!(!text(&output.stderr).contains("warning"), "{}", text(&output.stderr));
    assert_eq!(mode_owner_group(&path), (0o644, owner.0, owner.1));

    let output = run(cli()
        .args(["token", "revoke", "--file"])
        .arg(&path)
        .args(["--name", "seed"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(mode_owner_group(&path), (0o644, owner.0, owner.1));
}

#[test]
fn new_files_get_the_documented_default_modes() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    let users = dir.path().join("users.yaml");
    let key = dir.path().join("session.key");
    assert!(
        run(cli().args(["token", "create", "--name", "a", "--file"]).arg(&tokens))
            .status
            .success()
    );
    let mut add = cli();
    add.args(["user", "add", "--username", "alice", "--password-stdin", "--file"])
        .arg(&users);
    add.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = add.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(run(cli().args(["session-key", "create"]).arg(&key)).status.success());
    let mode = |path: &Path| mode_owner_group(path).0;
    assert_eq!((mode(&tokens), mode(&users), mode(&key)), (0o644, 0o644, 0o640));
}

#[test]
fn mode_and_group_flags_apply_to_new_and_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("session.key");
    // Root may name any group; anyone else their own.
    let gid = if is_root() {
        SERVER_UID
    } else {
        rustix::process::getegid().as_raw()
    };
    let output = run(cli()
        .args(["session-key", "create", "--group", &gid.to_string()])
        .arg(&key));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (mode, _, group) = mode_owner_group(&key);
    assert_eq!((mode, group), (0o640, gid));

    let output = run(cli()
        .args(["session-key", "create", "--force", "--mode", "0600"])
        .arg(&key));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (mode, _, group) = mode_owner_group(&key);
    assert_eq!((mode, group), (0o600, gid), "explicit mode applied, group kept");

    let output = run(cli()
        .args(["session-key", "create", "--force", "--mode", "0689"])
        .arg(&key));
    assert_eq!(output.status.code(), Some(2), "an invalid mode is a usage error");
    assert!(text(&output.stderr).contains("octal"), "{}", text(&output.stderr));
}

#[test]
fn an_unprivileged_writer_keeps_the_mode_and_warns_about_the_owner_it_cannot_keep() {
    if !is_root() {
        println!("skipped: setting up a file owned by another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("tokens.yaml");
    postgres_mcp::auth::admin::token_create(&path, "seed", None, None).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&path, Some(SERVER_UID), Some(SERVER_UID)).unwrap();
    // An operator account that is neither the owner nor in the owner's group.
    let Some(mut command) = cli_as(20002) else { return };
    let output = run(command.args(["token", "create", "--name", "me", "--file"]).arg(&path));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("10001:10001"),
        "names the owner it could not keep: {stderr}"
    );
    assert_eq!(mode_owner_group(&path), (0o644, 20002, 20002));
}

#[test]
fn config_check_loads_every_configured_file_and_exits_2_on_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    postgres_mcp::auth::admin::token_create(&tokens, "a", None, None).unwrap();
    let output = run(cli().args(["config", "check", "--tokens"]).arg(&tokens));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("ok      auth.tokens_file"),
        "{}",
        text(&output.stdout)
    );

    fs::write(&tokens, "tokens: [{name: x, hash: nothex}]").unwrap();
    let output = run(cli().args(["config", "check", "--tokens"]).arg(&tokens));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stdout).contains("FAILED  auth.tokens_file"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn config_check_as_the_server_user_says_who_owns_an_unreadable_file() {
    if !is_root() {
        println!("skipped: a root-owned file and a check run as uid {SERVER_UID} need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let tokens = dir.path().join("tokens.yaml");
    postgres_mcp::auth::admin::token_create(&tokens, "a", None, None).unwrap();
    // What the issue saw: the file rewritten by root as root:root 0640.
    std::os::unix::fs::chown(&tokens, Some(0), Some(0)).unwrap();
    fs::set_permissions(&tokens, fs::Permissions::from_mode(0o640)).unwrap();
    let Some(mut command) = cli_as(SERVER_UID) else { return };
    let output = run(command.args(["config", "check", "--tokens"]).arg(&tokens));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let expected = format!(
        "cannot read {}: permission denied (file owner 0:0 mode 0640; this process runs as uid {SERVER_UID} gid {SERVER_UID})",
        tokens.display()
    );
    assert!(stdout.contains(&expected), "{stdout}");
}
