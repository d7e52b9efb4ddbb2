//! Test fixtures for `postgres-mcp sync`: a real S3-compatible endpoint (moto's server, from PyPI,
//! with IAM authentication switched on so wrong keys and bad signatures are refused as S3 refuses
//! them), a scripted HTTP server for the failures S3 rarely produces on demand (500s, short bodies),
//! and a runner for the real binary with a clean environment.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use postgres_mcp::sync::s3::S3Access;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "pgmcp-sync";

/// The Python that has moto: scripts/test.sh sets TEST_PYTHON to the project venv.
pub fn python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A moto server on a loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// An IAM user's keys with `s3:*`; every S3 request must be signed with them.
    pub key: String,
    pub secret: String,
    /// A role whose trust policy admits web identities, with `s3:*`.
    pub role_arn: String,
    log: Arc<Mutex<String>>,
}

const SETUP: &str = r#"
import json, sys, boto3
endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
allow_s3 = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
iam.create_user(UserName="sync")
iam.put_user_policy(UserName="sync", PolicyName="s3", PolicyDocument=allow_s3)
key = iam.create_access_key(UserName="sync")["AccessKey"]
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example"},
    "Action": "sts:AssumeRoleWithWebIdentity"}]})
role = iam.create_role(RoleName="sync-role", AssumeRolePolicyDocument=trust)["Role"]
iam.put_role_policy(RoleName="sync-role", PolicyName="s3", PolicyDocument=allow_s3)
print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "role": role["Arn"]}))
"#;

impl Moto {
    /// Starts moto, creates an IAM user and role, switches authentication on and creates
    /// [`BUCKET`] with the user's keys. Fails loudly when moto is not installed: these tests are
    /// never skipped.
    pub async fn start() -> Moto {
        postgres_mcp::tls::install_crypto_provider();
        let python = python();
        let mut child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e} (set TEST_PYTHON to a Python with moto[server])"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(stderr).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    return Some(rest.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "moto did not start with {python} -m moto.server (is requirements-test.txt installed? \
                 scripts/setup.sh does it):\n{}",
                log.lock().unwrap()
            )
        });
        // Keep draining stderr (one line per request), or moto blocks once the pipe is full.
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{}\n", strip_ansi(&line)));
            }
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let setup = Command::new(&python)
            .args(["-c", SETUP, &endpoint])
            .output()
            .await
            .unwrap();
        assert!(
            setup.status.success(),
            "moto IAM setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let ids: serde_json::Value = serde_json::from_slice(&setup.stdout).unwrap();
        let moto = Moto {
            child,
            endpoint,
            key: ids["key"].as_str().unwrap().into(),
            secret: ids["secret"].as_str().unwrap().into(),
            role_arn: ids["role"].as_str().unwrap().into(),
            log,
        };
        moto.require_auth_after(0).await;
        let create = moto
            .s3_request(http::Method::PUT, &format!("{}/{BUCKET}", moto.endpoint), Bytes::new())
            .await;
        assert_eq!(create.status(), 200, "create bucket: {}", create.text().await.unwrap());
        moto
    }

    /// moto lets the next `count` requests through unauthenticated, then checks every one.
    pub async fn require_auth_after(&self, count: u32) {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .body(count.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Temporary credentials of [`Moto::role_arn`] (access key, secret, session token), as an
    /// instance profile would hand them out: from moto's STS, which lets them through its checks.
    pub async fn role_credentials(&self) -> (String, String, String) {
        const ASSUME: &str = r#"
import json, sys, boto3
sts = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="unused", aws_secret_access_key="unused")
c = sts.assume_role_with_web_identity(RoleArn=sys.argv[2], RoleSessionName="instance",
                                      WebIdentityToken="eyJhbGciOiJSUzI1NiJ9.e30.c2ln")["Credentials"]
print(json.dumps([c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]]))
"#;
        // The STS call itself is unsigned (the token is the credential): let that one through.
        self.require_auth_after(1).await;
        let out = Command::new(python())
            .args(["-c", ASSUME, &self.endpoint, &self.role_arn])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "assume role: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let [key, secret, token]: [String; 3] = serde_json::from_slice(&out.stdout).unwrap();
        (key, secret, token)
    }

    /// The environment a sync process needs: the user's keys, region and endpoint.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("AWS_ACCESS_KEY_ID".to_string(), self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret.clone()),
            ("AWS_REGION".to_string(), REGION.to_string()),
            ("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone()),
        ])
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{BUCKET}/{key}")
    }

    async fn s3_request(&self, method: http::Method, url: &str, body: Bytes) -> reqwest::Response {
        postgres_mcp::tls::install_crypto_provider();
        let client = reqwest::Client::new();
        let access = S3Access::from_env(&self.env(), client.clone());
        let request = access.signed_request(method, url, &[], body).await.unwrap();
        client.execute(request).await.unwrap()
    }

    /// Uploads (or replaces) an object, signed by the same code `sync` uses.
    pub async fn put(&self, key: &str, body: impl Into<Bytes>) {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint);
        let response = self.s3_request(http::Method::PUT, &url, body.into()).await;
        assert_eq!(response.status(), 200, "put {key}: {}", response.text().await.unwrap());
    }

    pub async fn delete(&self, key: &str) {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint);
        let response = self.s3_request(http::Method::DELETE, &url, Bytes::new()).await;
        assert_eq!(response.status(), 204, "delete {key}");
    }

    /// moto's request log so far (method, path and status of each request).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many GETs of `key` moto answered with `status`, waiting up to 5 s for `expected`:
    /// moto logs each request after answering it, so its log line may trail our response.
    pub async fn gets(&self, key: &str, status: u16, expected: usize) -> usize {
        let needle = format!("\"GET /{BUCKET}/{key} HTTP/1.1\" {status}");
        let count = || self.log().lines().filter(|l| l.contains(&needle)).count();
        for _ in 0..100 {
            if count() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        count()
    }
}

/// werkzeug colours request lines by status (304 cyan, 4xx red…); the tests read plain text.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What the scripted HTTP server answers, one reply per request (the last one repeats).
#[derive(Clone)]
pub enum Reply {
    Status(u16),
    /// Read the request, then never answer (the connection stays open): a hung GET.
    Hang,
    /// `Content-Length: declared`, then `body` (shorter than declared = the connection drops early).
    Body {
        body: Vec<u8>,
        declared: usize,
        etag: Option<String>,
    },
}

impl Reply {
    pub fn ok(body: &[u8]) -> Reply {
        Reply::Body {
            body: body.to_vec(),
            declared: body.len(),
            etag: None,
        }
    }
}

/// A loopback HTTP/1.1 server that follows a script and records the request heads it received.
pub struct ScriptedServer {
    pub base: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// When each request arrived.
    pub times: Arc<Mutex<Vec<std::time::Instant>>>,
    script: Arc<Mutex<Vec<Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    pub async fn start(script: Vec<Reply>) -> ScriptedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let times = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (seen, replies, arrived) = (requests.clone(), script.clone(), times.clone());
        let task = tokio::spawn(async move {
            let mut hung = Vec::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                arrived.lock().unwrap().push(std::time::Instant::now());
                let reply = {
                    let mut replies = replies.lock().unwrap();
                    if replies.len() > 1 {
                        replies.remove(0)
                    } else {
                        replies[0].clone()
                    }
                };
                let response = match reply {
                    Reply::Hang => {
                        hung.push(stream);
                        continue;
                    }
                    Reply::Status(code) => {
                        format!("HTTP/1.1 {code} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .into_bytes()
                    }
                    Reply::Body { body, declared, etag } => {
                        let etag = etag.map(|e| format!("ETag: {e}\r\n")).unwrap_or_default();
                        let mut bytes =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n{etag}Connection: close\r\n\r\n")
                                .into_bytes();
                        bytes.extend_from_slice(&body);
                        bytes
                    }
                };
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            }
        });
        ScriptedServer {
            base,
            requests,
            times,
            script,
            task,
        }
    }

    pub fn set_script(&self, script: Vec<Reply>) {
        *self.script.lock().unwrap() = script;
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a `postgres-mcp sync` run printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The JSON log lines (with `--log-format json`) that carry an `outcome`.
    pub fn outcomes(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("outcome").is_some())
            .collect()
    }
}

/// The real binary with only `env` (plus a HOME without AWS files) in its environment.
pub fn sync_command(env: &HashMap<String, String>, home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postgres-mcp"));
    command
        .arg("sync")
        .args(args)
        .env_clear()
        .envs(env)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub async fn run_sync(env: &HashMap<String, String>, home: &Path, args: &[&str]) -> Run {
    let output = tokio::time::timeout(Duration::from_secs(60), sync_command(env, home, args).output())
        .await
        .expect("sync --once finishes")
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A kb.db built from the demo docs plus one document containing `word`.
pub fn build_kb(dir: &Path, word: &str) -> Vec<u8> {
    let docs = dir.join(format!("docs-{word}"));
    std::fs::create_dir_all(&docs).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/docs");
    for entry in std::fs::read_dir(demo).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), docs.join(entry.file_name())).unwrap();
    }
    std::fs::write(docs.join("extra.md"), format!("# Extra\nThe word {word} lives here.\n")).unwrap();
    let out = dir.join(format!("kb-{word}.db"));
    postgres_mcp::kb::build::build(&docs, &out).unwrap();
    std::fs::read(out).unwrap()
}

/// Files in `dir` whose names look like our temp files.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
        .collect()
}

/// (inode, mtime) of a file: equal before and after means it was not replaced or rewritten.
pub fn identity(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.modified().unwrap())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `http://127.0.0.1:PORT` of a port nothing listens on (bound, then released).
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A `postgres-mcp sync` in interval mode with `--metrics-listen 127.0.0.1:0 --log-format json`,
/// its stdout collected line by line.
pub struct IntervalRun {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    /// host:port of the metrics and health listener.
    pub addr: String,
}

impl IntervalRun {
    pub async fn start(env: &HashMap<String, String>, home: &Path, args: &[&str]) -> IntervalRun {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--metrics-listen", "127.0.0.1:0", "--log-format", "json"]);
        let mut child = sync_command(env, home, &all).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let mut addr = None;
        for _ in 0..200 {
            addr = lines.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "serving sync metrics on /metrics").then(|| v["addr"].as_str().unwrap().to_string())
            });
            if addr.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        IntervalRun {
            child,
            lines,
            addr: addr.expect("metrics address logged"),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.addr)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn health(&self) -> (u16, serde_json::Value) {
        let (status, body) = self.get("/health").await;
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        )
    }

    /// The JSON log lines so far.
    pub fn log(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A loopback EC2 instance metadata service (IMDSv2) that hands out `key`/`secret` as the instance
/// profile's credentials; it records each request line with the headers that matter.
pub struct FakeImds {
    pub endpoint: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

const IMDS_TOKEN: &str = "imds-session-token-1";

impl FakeImds {
    pub async fn start(key: &str, secret: &str, session_token: &str) -> FakeImds {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let credentials = serde_json::json!({
            "Code": "Success",
            "LastUpdated": "2026-11-30T10:00:00Z",
            "Type": "AWS-HMAC",
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "Token": session_token,
            "Expiration": "2099-01-01T00:00:00Z",
        })
        .to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let line = head.lines().next().unwrap_or_default().to_string();
                let has_token = head.contains(&format!("x-aws-ec2-metadata-token: {IMDS_TOKEN}"));
                let has_ttl = head.contains("x-aws-ec2-metadata-token-ttl-seconds:");
                seen.lock()
                    .unwrap()
                    .push(format!("{line} token={has_token} ttl={has_ttl}"));
                let (status, body) = if line.starts_with("put /latest/api/token ") && has_ttl {
                    (200, IMDS_TOKEN.to_string())
                } else if !has_token {
                    (401, String::new())
                } else if line.starts_with("get /latest/meta-data/iam/security-credentials/ ") {
                    (200, "sync-instance-role".to_string())
                } else if line.starts_with("get /latest/meta-data/iam/security-credentials/sync-instance-role ") {
                    (200, credentials.clone())
                } else {
                    (404, String::new())
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        FakeImds {
            endpoint,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.task.abort();
    }
}
