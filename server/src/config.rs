//! Configuration: the embedded defaults, then the YAML file, then `PGMCP_*` environment variables,
//! then command-line flags — merged once at start-up and validated before anything listens.
//!
//! The defaults live in `default-config.yaml`, embedded in the binary, so there is exactly one place
//! that lists every key and its default, and it doubles as the reference documentation. Layers are
//! merged as YAML trees and deserialized once with `deny_unknown_fields`: a typo in a file or an
//! environment variable name is an error naming the key, never a silently ignored setting.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::{
    authority::{HostPattern, OriginPattern, WebOrigin},
    units::{ByteSize, HumanDuration},
};

/// The embedded defaults; also printed by `postgres-mcp config defaults`.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../default-config.yaml");

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "PGMCP_";

/// Environment variables with the prefix that are not config keys (read by clap directly).
const ENV_NOT_KEYS: &[&str] = &["PGMCP_CONFIG"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub instance_id: Option<String>,
    pub public_url: Option<String>,
    pub auth: AuthConfig,
    pub kb: KbConfig,
    pub watch: WatchConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub trace: TraceConfig,
    pub shutdown: ShutdownConfig,
    pub http: HttpConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub tokens_file: Option<PathBuf>,
    pub users_file: Option<PathBuf>,
    pub session_secret_file: Option<PathBuf>,
    pub session_ttl: HumanDuration,
    pub rate_limit: RateLimitConfig,
    pub password_checks: PasswordChecksConfig,
    pub trusted_proxies: Vec<String>,
    pub oauth: OAuthConfig,
}

/// `auth.oauth`: OAuth 2.1 for MCP clients (`auth::oauth`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    pub mode: OAuthMode,
    /// null: `public_url` + `/mcp`.
    pub resource: Option<String>,
    pub leeway: HumanDuration,
    pub scope_prefix: String,
    pub external: ExternalIdpConfig,
    pub builtin: BuiltinAsConfig,
}

/// Which authorization server issues the access tokens `/mcp` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthMode {
    Off,
    External,
    Builtin,
}

impl<'de> Deserialize<'de> for OAuthMode {
    /// `off`, `external` or `builtin`; a YAML 1.1 reader turns a bare `off` into `false`, which
    /// means off too.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bool(false) => Ok(OAuthMode::Off),
            Raw::Text(text) if text == "off" => Ok(OAuthMode::Off),
            Raw::Text(text) if text == "external" => Ok(OAuthMode::External),
            Raw::Text(text) if text == "builtin" => Ok(OAuthMode::Builtin),
            _ => Err(serde::de::Error::custom("expected one of: off, external, builtin")),
        }
    }
}

/// `auth.oauth.external`: the organisation's identity provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIdpConfig {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub principal_claim: String,
    pub scopes_claim: String,
    pub jwks_refresh_interval: HumanDuration,
    pub request_timeout: HumanDuration,
}

/// `auth.oauth.builtin`: the authorization server this server runs for users.yaml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinAsConfig {
    pub access_token_ttl: HumanDuration,
    pub refresh_token_ttl: HumanDuration,
    pub code_ttl: HumanDuration,
    pub login_title: String,
}

/// `auth.password_checks`: how many bcrypt checks run at once and how long a login waits for one
/// (issue #13 §B.10).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChecksConfig {
    /// null: half the cores, at least one.
    pub concurrency: Option<usize>,
    pub wait: HumanDuration,
}

impl PasswordChecksConfig {
    /// The number of checks that may run at once.
    pub fn slots(&self) -> usize {
        self.concurrency.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / 2).max(1)
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub failures: u32,
    pub window: HumanDuration,
    pub lockout: HumanDuration,
    pub max_clients: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbConfig {
    pub path: Option<PathBuf>,
    pub copy_to_local: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    pub mode: WatchMode,
    pub poll_interval: HumanDuration,
    pub settle: HumanDuration,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    Auto,
    Notify,
    Poll,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// May hold a password: printed as `postgres://user:***@host/db` (see [`SecretUrl`]).
    pub url: Option<SecretUrl>,
    pub url_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
    pub connect_timeout: HumanDuration,
    pub statement_timeout: HumanDuration,
    pub max_rows: usize,
    pub max_result_size: ByteSize,
    pub health_interval: HumanDuration,
    /// Refuse the database tools while the role audit finds the role unsafe (issue #13 §C.12).
    pub require_safe_role: bool,
}

/// A connection URL that may carry a password. `config check` prints the whole configuration and
/// CI logs keep it, so its `Debug` form masks the password; [`SecretUrl::expose`] gives the URL.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The URL itself, password included: for the connection, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `scheme://user:password@host...`: mask between the first ':' after "//" and the last '@'
        // before the path. Anything unparsable is masked whole.
        // `scheme://user:password@host/db?query`: the password masked (between the first ':' and the
        // last '@' before the path), and a query naming a password in any case or encoding
        // (`?password=`, `?PASSWORD=`, `?options=-c%20password%3D…`) masked whole. The query is
        // looked for after the user info, so a '?' inside a password cannot end it early.
        let masked = self.0.split_once("://").map(|(scheme, rest)| {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (user, remainder) = match rest[..authority_end].rfind('@') {
                Some(at) => (Some(rest[..at].split(':').next().unwrap_or_default()), &rest[at + 1..]),
                None => (None, rest),
            };
            let remainder = match remainder.split_once('?') {
                Some((path, query)) if query.to_ascii_lowercase().contains("password") => format!("{path}?***"),
                _ => remainder.to_string(),
            };
            match user {
                Some(user) => format!("{scheme}://{user}:***@{remainder}"),
                None => format!("{scheme}://{remainder}"),
            }
        });
        match masked {
            Some(masked) => write!(f, "{masked:?}"),
            // key=value form (`host=… password=…`), or text that is no URL at all.
            None if self.0.contains('@') || self.0.to_ascii_lowercase().contains("password") => f.write_str("\"***\""),
            None => write!(f, "{:?}", self.0),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
    pub access: AccessLogConfig,
    pub audit: AuditLogConfig,
    pub file: LogFileConfig,
}

/// `log.access`: which requests get an access line.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    pub mode: AccessLogMode,
    /// With [`AccessLogMode::Sampled`]: the share of successful requests logged, 0.0 to 1.0.
    pub sample_ratio: f64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogMode {
    All,
    Sampled,
    Off,
}

/// `log.audit`: how the audit line of a database tool call shows its statement.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLogConfig {
    pub statement: AuditStatement,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatement {
    /// Literals replaced by `$1`, `$2` … by PostgreSQL's own parser.
    Normalized,
    /// The statement as the model sent it.
    Full,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFileConfig {
    pub dir: Option<PathBuf>,
    pub rotation: LogRotation,
    pub prefix: String,
    /// Rotated files kept; 0 keeps every file.
    pub max_files: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    Daily,
    Hourly,
    Never,
}

/// `trace.*`: OpenTelemetry span export (see `trace_export`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// OTLP/HTTP base URL (`http://collector:4318`); `None` or empty: export off.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces sampled, 0.0..=1.0 (parent-based: an incoming traceparent decides).
    pub sample_ratio: f64,
    pub service_name: String,
}

impl TraceConfig {
    /// The endpoint when export is on.
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = self.endpoint() {
            let authority = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "trace.otlp_endpoint",
                        "must start with http:// or https:// (OTLP over HTTP, e.g. http://otel-collector:4318)",
                    )
                })?;
            let host = authority.split(['/', '?', '#']).next().unwrap_or_default();
            if host.is_empty() || host.contains(char::is_whitespace) || host.contains('@') {
                return Err(ConfigError::invalid(
                    "trace.otlp_endpoint",
                    "needs a host[:port] after the scheme, and no user:password@ (send credentials through the collector)",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::invalid(
                "trace.sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::invalid("trace.service_name", "must not be empty"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    pub drain_delay: HumanDuration,
    pub grace: HumanDuration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub max_body: ByteSize,
    pub request_timeout: HumanDuration,
    /// Read with the parser the request's `Origin` goes through; an entry it cannot read (a path,
    /// `null`, an unsupported wildcard) is an error naming `http.allowed_origins[i]` (issue #13 §A.4).
    pub allowed_origins: Vec<OriginPattern>,
    /// Read with the parser the request's `Host` goes through (ports dropped, case folded,
    /// brackets removed), so an entry always means what a request can match.
    pub allowed_hosts: Vec<HostPattern>,
    /// Longest a connection may stay open without a request in progress: before its first request
    /// and between keep-alive requests. Must exceed the idle timeout of the proxy in front.
    pub idle_timeout: HumanDuration,
    /// Longest from the first byte of a request head to its end (slow-loris bound).
    pub header_read_timeout: HumanDuration,
    /// Most HTTP connections open at once: past it the longest-idle are closed, or with none idle
    /// the new one gets 503 (see `connections`). Bounds their memory (~20 KiB each).
    pub max_connections: usize,
}

/// A configuration problem, always naming the key (or the file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid YAML: {source}")]
    Syntax { path: PathBuf, source: serde_yaml::Error },
    #[error("environment variable {name} is not a config key (known keys: see `postgres-mcp config defaults`)")]
    UnknownEnv { name: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Values given as command-line flags; they override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub tokens_file: Option<PathBuf>,
    pub users_file: Option<PathBuf>,
    pub kb_path: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub instance_id: Option<String>,
}

impl Config {
    /// Loads and validates the configuration from every layer.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut tree: Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML).expect("embedded default config is valid YAML");
        let known = leaf_paths(&tree);

        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let layer: Value = serde_yaml::from_str(&text).map_err(|source| ConfigError::Syntax {
                path: path.to_path_buf(),
                source,
            })?;
            match layer {
                Value::Null => {}
                Value::Mapping(_) => merge(&mut tree, layer),
                _ => {
                    return Err(ConfigError::invalid(
                        "(top level)",
                        format!("{} must be a YAML mapping", path.display()),
                    ));
                }
            }
        }

        for (name, raw) in env {
            if !name.starts_with(ENV_PREFIX) || ENV_NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            let path = known
                .get(&name)
                .ok_or_else(|| ConfigError::UnknownEnv { name: name.clone() })?;
            let value = env_value(&tree, path, &raw);
            set_path(&mut tree, path, value);
        }

        let flag = |tree: &mut Value, path: &[&str], value: Value| {
            set_path(tree, &path.iter().map(|s| s.to_string()).collect::<Vec<_>>(), value)
        };
        if let Some(listen) = &overrides.listen {
            flag(&mut tree, &["listen"], Value::String(listen.clone()));
        }
        if let Some(id) = &overrides.instance_id {
            flag(&mut tree, &["instance_id"], Value::String(id.clone()));
        }
        if let Some(path) = &overrides.tokens_file {
            flag(&mut tree, &["auth", "tokens_file"], path_value(path));
        }
        if let Some(path) = &overrides.users_file {
            flag(&mut tree, &["auth", "users_file"], path_value(path));
        }
        if let Some(path) = &overrides.kb_path {
            flag(&mut tree, &["kb", "path"], path_value(path));
        }
        if let Some(format) = overrides.log_format {
            let text = if format == LogFormat::Json { "json" } else { "text" };
            flag(&mut tree, &["log", "format"], Value::String(text.into()));
        }

        let config: Config = serde_path_to_error::deserialize(tree).map_err(|err| {
            let key = err.path().to_string();
            ConfigError::Invalid {
                key,
                message: err.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let oauth = &self.auth.oauth;
        if self.auth.tokens_file.is_none() && self.auth.users_file.is_none() && oauth.mode != OAuthMode::External {
            return Err(ConfigError::invalid(
                "auth.tokens_file",
                "no credentials configured: set auth.tokens_file (--tokens) and/or auth.users_file (--users)",
            ));
        }
        if self.auth.users_file.is_some() && self.auth.session_secret_file.is_none() {
            return Err(ConfigError::invalid(
                "auth.session_secret_file",
                "required when auth.users_file is set (create one with `postgres-mcp session-key create FILE`)",
            ));
        }
        if self.auth.session_ttl.get().is_zero() {
            return Err(ConfigError::invalid("auth.session_ttl", "must be longer than 0s"));
        }
        if self.auth.rate_limit.failures == 0 {
            return Err(ConfigError::invalid("auth.rate_limit.failures", "must be at least 1"));
        }
        if self.auth.rate_limit.max_clients == 0 {
            return Err(ConfigError::invalid(
                "auth.rate_limit.max_clients",
                "must be at least 1",
            ));
        }
        if self.auth.password_checks.concurrency == Some(0) {
            return Err(ConfigError::invalid(
                "auth.password_checks.concurrency",
                "must be at least 1 (null: half the cores)",
            ));
        }
        for proxy in &self.auth.trusted_proxies {
            crate::net::IpNet::parse(proxy).map_err(|e| ConfigError::invalid("auth.trusted_proxies", e.to_string()))?;
        }
        if self.watch.poll_interval.get().is_zero() {
            return Err(ConfigError::invalid("watch.poll_interval", "must be longer than 0s"));
        }
        if self.http.max_body.bytes() == 0 {
            return Err(ConfigError::invalid("http.max_body", "must be at least 1 byte"));
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::invalid("http.max_connections", "must be at least 1"));
        }
        if self.http.request_timeout.get().is_zero() {
            return Err(ConfigError::invalid("http.request_timeout", "must be longer than 0s"));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::invalid(
                    "public_url",
                    format!("`{url}` must start with http:// or https://"),
                ));
            }
            WebOrigin::of_url(url).map_err(|e| ConfigError::invalid("public_url", e.to_string()))?;
        }
        for (key, value) in [
            ("http.idle_timeout", self.http.idle_timeout),
            ("http.header_read_timeout", self.http.header_read_timeout),
        ] {
            if value.get().is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        if self.database.url.is_some() && self.database.url_file.is_some() {
            return Err(ConfigError::invalid(
                "database.url_file",
                "set either database.url or database.url_file, not both",
            ));
        }
        let database = &self.database;
        if database.pool_size == 0 {
            return Err(ConfigError::invalid("database.pool_size", "must be at least 1"));
        }
        if database.max_rows == 0 {
            return Err(ConfigError::invalid("database.max_rows", "must be at least 1"));
        }
        if database.max_result_size.bytes() < 1024 {
            return Err(ConfigError::invalid(
                "database.max_result_size",
                "must be at least 1KiB",
            ));
        }
        for (key, value) in [
            ("database.connect_timeout", database.connect_timeout),
            ("database.statement_timeout", database.statement_timeout),
            ("database.health_interval", database.health_interval),
        ] {
            if value.get().is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        let ratio = self.log.access.sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::invalid(
                "log.access.sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
        self.trace.validate()?;
        self.validate_oauth()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| ConfigError::invalid("log.level", format!("not a valid filter: {err}")))?;
        Ok(())
    }

    /// `auth.oauth`: what each mode needs, and durations that are not zero.
    fn validate_oauth(&self) -> Result<(), ConfigError> {
        let oauth = &self.auth.oauth;
        if oauth.mode == OAuthMode::Off {
            return Ok(());
        }
        if self.public_url.is_none() {
            return Err(ConfigError::invalid(
                "public_url",
                "required when auth.oauth.mode is set: clients are told the URLs of this server's metadata and endpoints",
            ));
        }
        if let Some(resource) = &oauth.resource
            && !(resource.starts_with("https://") || resource.starts_with("http://"))
        {
            return Err(ConfigError::invalid(
                "auth.oauth.resource",
                format!("`{resource}` must be an absolute http(s) URL (RFC 8707)"),
            ));
        }
        match oauth.mode {
            OAuthMode::External => match &oauth.external.issuer {
                None => {
                    return Err(ConfigError::invalid(
                        "auth.oauth.external.issuer",
                        "required when auth.oauth.mode is external",
                    ));
                }
                Some(issuer) if !(issuer.starts_with("https://") || issuer.starts_with("http://")) => {
                    return Err(ConfigError::invalid(
                        "auth.oauth.external.issuer",
                        format!("`{issuer}` must be an http(s) URL"),
                    ));
                }
                Some(_) => {}
            },
            OAuthMode::Builtin => {
                if self.auth.users_file.is_none() {
                    return Err(ConfigError::invalid(
                        "auth.users_file",
                        "required when auth.oauth.mode is builtin: its users are the ones who sign in",
                    ));
                }
            }
            OAuthMode::Off => {}
        }
        for (key, value) in [
            (
                "auth.oauth.external.jwks_refresh_interval",
                oauth.external.jwks_refresh_interval,
            ),
            ("auth.oauth.external.request_timeout", oauth.external.request_timeout),
            ("auth.oauth.builtin.access_token_ttl", oauth.builtin.access_token_ttl),
            ("auth.oauth.builtin.refresh_token_ttl", oauth.builtin.refresh_token_ttl),
            ("auth.oauth.builtin.code_ttl", oauth.builtin.code_ttl),
        ] {
            if value.get().is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        Ok(())
    }

    /// The origin of `public_url` (validated at load): its host is an allowed Host, the origin an
    /// allowed Origin.
    pub fn public_origin(&self) -> Option<WebOrigin> {
        WebOrigin::of_url(self.public_url.as_deref()?).ok()
    }
}

fn path_value(path: &Path) -> Value {
    Value::String(path.to_string_lossy().into_owned())
}

/// Every leaf of the default tree, keyed by the environment variable that overrides it.
fn leaf_paths(tree: &Value) -> BTreeMap<String, Vec<String>> {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut BTreeMap<String, Vec<String>>) {
        match value {
            Value::Mapping(map) => {
                for (key, child) in map {
                    if let Some(key) = key.as_str() {
                        path.push(key.to_string());
                        walk(child, path, out);
                        path.pop();
                    }
                }
            }
            _ => {
                let name = format!("{ENV_PREFIX}{}", path.join("_").to_ascii_uppercase());
                out.insert(name, path.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// An environment value as YAML: lists are comma-separated; scalars are parsed as YAML so numbers
/// and booleans keep their type, and an empty value means null.
fn env_value(tree: &Value, path: &[String], raw: &str) -> Value {
    let current = path.iter().try_fold(tree, |node, key| node.get(key.as_str()));
    if matches!(current, Some(Value::Sequence(_))) {
        let items = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
        return Value::Sequence(items.map(|s| Value::String(s.to_string())).collect());
    }
    if raw.is_empty() {
        return Value::Null;
    }
    match serde_yaml::from_str::<Value>(raw) {
        Ok(value @ (Value::Bool(_) | Value::Number(_))) => value,
        _ => Value::String(raw.to_string()),
    }
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for key in &path[..path.len() - 1] {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        node = map
            .entry(Value::String(key.clone()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    node.as_mapping_mut()
        .expect("just made a mapping")
        .insert(Value::String(path[path.len() - 1].clone()), value);
}

/// Deep merge: mappings merge key by key, anything else in `layer` replaces what `base` had.
fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Mapping(base_map), Value::Mapping(layer_map)) => {
            for (key, value) in layer_map {
                match base_map.get_mut(&key) {
                    Some(existing) if existing.is_mapping() && value.is_mapping() => merge(existing, value),
                    _ => {
                        base_map.insert(key, value);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn with_tokens() -> Overrides {
        Overrides {
            tokens_file: Some("/tmp/tokens.yaml".into()),
            ..Default::default()
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn error(result: Result<Config, ConfigError>) -> String {
        result.expect_err("config should be rejected").to_string()
    }

    #[test]
    fn defaults_plus_a_tokens_flag_start() {
        let config = Config::load(None, vec![], &with_tokens()).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.http.max_body.bytes(), 1 << 20);
        assert_eq!(config.watch.mode, WatchMode::Auto);
    }

    #[test]
    fn no_credentials_at_all_is_rejected() {
        assert!(error(Config::load(None, vec![], &Overrides::default())).contains("auth.tokens_file"));
    }

    #[test]
    fn users_without_a_session_key_is_rejected() {
        let overrides = Overrides {
            users_file: Some("/tmp/users.yaml".into()),
            ..Default::default()
        };
        assert!(error(Config::load(None, vec![], &overrides)).contains("auth.session_secret_file"));
    }

    #[test]
    fn layers_apply_in_order_file_env_flag() {
        let config_file = file("listen: 127.0.0.1:1000\nhttp:\n  max_body: 2KiB\n  request_timeout: 3s\n");
        let env = vec![
            ("PGMCP_LISTEN".to_string(), "127.0.0.1:2000".to_string()),
            (
                "PGMCP_HTTP_ALLOWED_HOSTS".to_string(),
                "mcp.example.com, other.example.com".to_string(),
            ),
            ("PGMCP_AUTH_RATE_LIMIT_FAILURES".to_string(), "3".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let overrides = Overrides {
            listen: Some("127.0.0.1:3000".into()),
            ..with_tokens()
        };
        let config = Config::load(Some(config_file.path()), env, &overrides).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.http.max_body.bytes(), 2048);
        assert_eq!(config.http.request_timeout.get().as_secs(), 3);
        let hosts: Vec<String> = config.http.allowed_hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, vec!["mcp.example.com", "other.example.com"]);
        assert_eq!(config.auth.rate_limit.failures, 3);
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let config_file = file("auth:\n  tokns_file: /x\n");
        let message = error(Config::load(Some(config_file.path()), vec![], &with_tokens()));
        assert!(message.contains("tokns_file"), "{message}");
    }

    #[test]
    fn unknown_env_vars_with_the_prefix_are_rejected() {
        let env = vec![("PGMCP_AUTH_TOKEN_FILE".to_string(), "/x".to_string())];
        assert!(error(Config::load(None, env, &with_tokens())).contains("PGMCP_AUTH_TOKEN_FILE"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let config_file = file("shutdown:\n  grace: 30x\n");
        let message = error(Config::load(Some(config_file.path()), vec![], &with_tokens()));
        assert!(
            message.contains("shutdown.grace") && message.contains("unknown unit"),
            "{message}"
        );
        let config_file = file("watch:\n  mode: inotify\n");
        assert!(error(Config::load(Some(config_file.path()), vec![], &with_tokens())).contains("watch.mode"));
        let env = vec![("PGMCP_LISTEN".to_string(), "not-an-address".to_string())];
        assert!(error(Config::load(None, env, &with_tokens())).contains("listen"));
    }

    #[test]
    fn public_url_gives_the_public_origin() {
        let env = vec![(
            "PGMCP_PUBLIC_URL".to_string(),
            "https://MCP.example.com:443/mcp".to_string(),
        )];
        let config = Config::load(None, env, &with_tokens()).unwrap();
        assert_eq!(config.public_origin().unwrap().to_string(), "https://mcp.example.com");
        for url in [
            "mcp.example.com",
            "ftp://mcp.example.com",
            "https://",
            "https://mcp.example.com:x/",
        ] {
            let env = vec![("PGMCP_PUBLIC_URL".to_string(), url.to_string())];
            assert!(
                error(Config::load(None, env, &with_tokens())).contains("public_url"),
                "{url}"
            );
        }
    }

    /// Issue #13 §A.4: every entry either means what a request can match or is refused naming its
    /// key, from the file and from the environment alike.
    #[test]
    fn allowed_hosts_and_origins_are_normalised_or_refused_naming_the_key() {
        let env = |name: &str, value: &str| vec![(name.to_string(), value.to_string())];
        let config = Config::load(
            None,
            env(
                "PGMCP_HTTP_ALLOWED_HOSTS",
                "MCP.example.com:8443, [::1]:80, *.Example.org.",
            ),
            &with_tokens(),
        )
        .unwrap();
        let hosts: Vec<String> = config.http.allowed_hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["mcp.example.com", "[::1]", "*.example.org"]);
        let config_file =
            file("http:\n  allowed_origins: [\"HTTPS://App.example.com:443/\", \"http://localhost:3000\"]\n");
        let config = Config::load(Some(config_file.path()), vec![], &with_tokens()).unwrap();
        let origins: Vec<String> = config.http.allowed_origins.iter().map(|o| o.to_string()).collect();
        assert_eq!(origins, ["https://app.example.com", "http://localhost:3000"]);

        for (name, value, key) in [
            (
                "PGMCP_HTTP_ALLOWED_HOSTS",
                "ok.example.com,https://mcp.example.com",
                "http.allowed_hosts[1]",
            ),
            ("PGMCP_HTTP_ALLOWED_HOSTS", "mcp.*.example.com", "http.allowed_hosts[0]"),
            (
                "PGMCP_HTTP_ALLOWED_ORIGINS",
                "https://app.example.com/mcp",
                "http.allowed_origins[0]",
            ),
            (
                "PGMCP_HTTP_ALLOWED_ORIGINS",
                "app.example.com",
                "http.allowed_origins[0]",
            ),
            ("PGMCP_HTTP_ALLOWED_ORIGINS", "null", "http.allowed_origins[0]"),
        ] {
            let message = error(Config::load(None, env(name, value), &with_tokens()));
            assert!(message.contains(&format!("`{key}`")), "{value}: {message}");
        }
        let config_file = file("http:\n  allowed_hosts: [\"*example.com\"]\n");
        let message = error(Config::load(Some(config_file.path()), vec![], &with_tokens()));
        assert!(
            message.contains("`http.allowed_hosts[0]`") && message.contains("wildcards"),
            "{message}"
        );
    }
}

#[cfg(test)]
mod trace_config_tests {
    use super::*;

    /// The configuration from `env` alone (plus a tokens file, which every configuration needs).
    pub(super) fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let overrides = Overrides {
            tokens_file: Some("/tmp/tokens.yaml".into()),
            ..Default::default()
        };
        Config::load(None, env, &overrides)
    }

    #[test]
    fn trace_export_is_off_by_default_and_one_variable_turns_it_on() {
        let config = load(&[]).unwrap();
        assert_eq!(config.trace.endpoint(), None);
        assert_eq!(config.trace.sample_ratio, 1.0);
        assert_eq!(config.trace.service_name, "postgres-mcp");
        let config = load(&[("PGMCP_TRACE_OTLP_ENDPOINT", "http://otel-collector:4318")]).unwrap();
        assert_eq!(config.trace.endpoint(), Some("http://otel-collector:4318"));
        let config = load(&[("PGMCP_TRACE_OTLP_ENDPOINT", "")]).unwrap();
        assert_eq!(config.trace.endpoint(), None);
    }

    #[test]
    fn a_bad_endpoint_or_ratio_is_refused_naming_the_key() {
        for endpoint in [
            "otel-collector:4318",
            "grpc://c:4317",
            "http://",
            "https://user:pw@c:4318",
        ] {
            let message = load(&[("PGMCP_TRACE_OTLP_ENDPOINT", endpoint)])
                .unwrap_err()
                .to_string();
            assert!(message.contains("`trace.otlp_endpoint`"), "{endpoint}: {message}");
            assert!(!message.contains("pw@"), "{message}");
        }
        for ratio in ["1.5", "-0.1"] {
            let message = load(&[("PGMCP_TRACE_SAMPLE_RATIO", ratio)]).unwrap_err().to_string();
            assert!(message.contains("`trace.sample_ratio`"), "{ratio}: {message}");
        }
    }
}

#[cfg(test)]
mod secret_url_tests {
    use super::SecretUrl;

    #[test]
    fn a_database_password_never_shows_in_debug_output() {
        for (url, shown) in [
            (
                "postgres://app:s3cr3t@db.internal:5432/app?sslmode=require",
                "postgres://app:***@db.internal:5432/app?sslmode=require",
            ),
            ("postgres://app:p@ss@db/app", "postgres://app:***@db/app"),
            ("postgres://db.internal/app", "postgres://db.internal/app"),
            ("host=db user=app password=s3cr3t", "***"),
            ("host=db user=app PASSWORD=s3cr3t", "***"),
            ("postgres://app:pa?s3cr3t@db/app", "postgres://app:***@db/app"),
            ("postgres://db/app?user=app&PassWord=s3cr3t", "postgres://db/app?***"),
            ("postgres://db?password=s3cr3t", "postgres://db?***"),
            (
                "postgres://app@db/app?options=-c%20password%3Ds3cr3t",
                "postgres://app:***@db/app?***",
            ),
        ] {
            let debug = format!("{:?}", SecretUrl::new(url));
            assert!(!debug.contains("s3cr3t") && !debug.contains("p@ss"), "{debug}");
            assert_eq!(debug.trim_matches('"'), shown);
        }
        assert_eq!(SecretUrl::new("postgres://a:b@c/d").expose(), "postgres://a:b@c/d");
    }
}

#[cfg(test)]
mod oauth_config_tests {
    use super::trace_config_tests::load;
    use super::*;

    #[test]
    fn oauth_is_off_by_default_and_each_mode_names_what_it_lacks() {
        assert_eq!(load(&[]).unwrap().auth.oauth.mode, OAuthMode::Off);
        assert_eq!(
            load(&[("PGMCP_AUTH_OAUTH_MODE", "off")]).unwrap().auth.oauth.mode,
            OAuthMode::Off
        );
        let no_url = load(&[("PGMCP_AUTH_OAUTH_MODE", "external")]).unwrap_err().to_string();
        assert!(no_url.contains("public_url"), "{no_url}");
        let no_issuer = load(&[
            ("PGMCP_AUTH_OAUTH_MODE", "external"),
            ("PGMCP_PUBLIC_URL", "https://mcp.example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(no_issuer.contains("auth.oauth.external.issuer"), "{no_issuer}");
        let no_users = load(&[
            ("PGMCP_AUTH_OAUTH_MODE", "builtin"),
            ("PGMCP_PUBLIC_URL", "https://mcp.example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(no_users.contains("auth.users_file"), "{no_users}");
        let typo = load(&[("PGMCP_AUTH_OAUTH_MODE", "bulitin")]).unwrap_err().to_string();
        assert!(typo.contains("off, external, builtin"), "{typo}");
        let external = load(&[
            ("PGMCP_AUTH_OAUTH_MODE", "external"),
            ("PGMCP_PUBLIC_URL", "https://mcp.example.com"),
            (
                "PGMCP_AUTH_OAUTH_EXTERNAL_ISSUER",
                "https://idp.example.com/realms/acme",
            ),
            (
                "PGMCP_AUTH_OAUTH_EXTERNAL_AUDIENCES",
                "api://mcp, https://mcp.example.com/mcp",
            ),
        ])
        .unwrap();
        assert_eq!(
            external.auth.oauth.external.audiences,
            ["api://mcp", "https://mcp.example.com/mcp"]
        );
    }

    #[test]
    fn an_external_idp_alone_is_enough_credentials() {
        let env = [
            ("PGMCP_AUTH_OAUTH_MODE", "external"),
            ("PGMCP_PUBLIC_URL", "https://mcp.example.com"),
            ("PGMCP_AUTH_OAUTH_EXTERNAL_ISSUER", "https://idp.example.com"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert!(Config::load(None, env, &Overrides::default()).is_ok());
    }
}
