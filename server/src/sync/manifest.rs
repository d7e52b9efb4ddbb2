//! What to sync: source/destination pairs from the command line or from a YAML manifest.
//!
//! The manifest is the Helm chart's `/app/etc/sync.yaml` and the Compose sidecar's file:
//!
//! ```yaml
//! items:
//!   - source: s3://my-bucket/postgres-mcp/kb.db
//!     dest: /app/data/kb.db
//!     sha256: 9f86d081884c7d65...   # optional: pin the exact content
//!   - source: https://example.com/tokens.yaml
//!     dest: /app/config/tokens.yaml
//!     kind: tokens                  # optional: inferred from the file name
//!     allow_empty: false            # optional: may `tokens: []` replace a non-empty file?
//! ```
//!
//! Unknown keys are errors, as in the server's configuration: a typo (`sha265:`) must not silently
//! turn a pinned download into an unpinned one.

use std::{
    collections::HashSet,
    fmt,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::{
    error::{InvalidItem, ManifestError},
    s3::S3Location,
};

/// Where a file comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Any http(s) URL, pre-signed S3/GCS/Azure SAS URLs included (fetched as plain HTTPS).
    Http(reqwest::Url),
    /// An object fetched with SigV4-signed requests.
    S3(S3Location),
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, InvalidItem> {
        let text = text.trim();
        if text.starts_with("s3://") {
            return S3Location::parse(text).map(Source::S3);
        }
        let invalid = |problem: String| InvalidItem(format!("source `{}`{problem}", redact_text(text)));
        let url = reqwest::Url::parse(text).map_err(|e| invalid(format!(": {e}")))?;
        match url.scheme() {
            "http" | "https" if url.host_str().is_some() => Ok(Source::Http(url)),
            "http" | "https" => Err(invalid(" has no host".into())),
            scheme => Err(invalid(format!(
                ": unsupported scheme `{scheme}` (use http://, https:// or s3://bucket/key)"
            ))),
        }
    }

    /// The source without user info or query string: safe for logs, errors and the state file.
    pub fn redacted(&self) -> String {
        match self {
            Source::S3(location) => location.to_string(),
            Source::Http(url) => {
                let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
                if let Some(port) = url.port() {
                    shown.push_str(&format!(":{port}"));
                }
                shown.push_str(url.path());
                if url.query().is_some() {
                    shown.push_str("?[redacted]");
                }
                shown
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A source string that did not even parse, cut before anything that may be secret.
fn redact_text(text: &str) -> String {
    let cut = text.find(['?', '#']).unwrap_or(text.len());
    let mut shown = text[..cut].to_string();
    if let (Some(at), Some(scheme_end)) = (shown.find('@'), shown.find("://"))
        && scheme_end < at
    {
        shown.replace_range(scheme_end + 3..=at, "[redacted]@");
    }
    if cut < text.len() {
        shown.push_str("?[redacted]");
    }
    shown
}

/// How a downloaded file is validated before it may replace the destination. Each kind is checked
/// by the same loader the server uses to read it, so a file that passes here is one every instance
/// accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A knowledge base: `PRAGMA quick_check`, schema version and FTS probe.
    Kb,
    /// tokens.yaml (also pgEdge's layout).
    Tokens,
    /// users.yaml.
    Users,
    /// The session key file.
    SessionKey,
    /// Anything else: size and optional sha256 only (a `.yaml` must at least parse as YAML).
    Raw,
}

impl Kind {
    /// The kind a destination's file name suggests: `*.db` is a knowledge base, `*token*.yaml` a
    /// tokens file, `*user*.yaml` a users file, `*session*.key` a session key.
    pub fn infer(dest: &Path) -> Kind {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if name.ends_with(".db") || name.ends_with(".sqlite") || name.ends_with(".sqlite3") {
            Kind::Kb
        } else if yaml && name.contains("token") {
            Kind::Tokens
        } else if yaml && name.contains("user") {
            Kind::Users
        } else if name.ends_with(".key") && name.contains("session") {
            Kind::SessionKey
        } else {
            Kind::Raw
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Kb => "kb",
            Kind::Tokens => "tokens",
            Kind::Users => "users",
            Kind::SessionKey => "session-key",
            Kind::Raw => "raw",
        }
    }

    /// Permission bits of a new destination, the CLI's defaults for the same files (an existing
    /// destination keeps its mode, owner and group): the session key is a secret, the rest are
    /// hashes or published documentation.
    pub fn mode(self) -> u32 {
        match self {
            Kind::SessionKey => crate::auth::admin::SESSION_KEY_MODE,
            Kind::Tokens | Kind::Users => crate::auth::admin::HASH_FILE_MODE,
            Kind::Kb => crate::kb::build::KB_FILE_MODE,
            Kind::Raw => 0o644,
        }
    }
}

/// One source/destination pair, validated.
#[derive(Clone, Debug)]
pub struct Item {
    pub source: Source,
    pub dest: PathBuf,
    /// Expected SHA-256 of the content, if pinned.
    pub sha256: Option<[u8; 32]>,
    pub kind: Kind,
    /// Whether a tokens or users file with no entries may replace one with entries (default: no,
    /// such a download is refused: it would lock everyone out).
    pub allow_empty: bool,
}

impl Item {
    pub fn new(source: &str, dest: PathBuf, sha256: Option<&str>, kind: Option<Kind>) -> Result<Item, InvalidItem> {
        let source = Source::parse(source)?;
        if dest.file_name().is_none() || dest.as_os_str().to_string_lossy().ends_with('/') {
            return Err(InvalidItem(format!("dest {} is not a file path", dest.display())));
        }
        let sha256 = match sha256.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(parse_sha256(text)?),
        };
        let kind = kind.unwrap_or_else(|| Kind::infer(&dest));
        Ok(Item {
            source,
            dest,
            sha256,
            kind,
            allow_empty: false,
        })
    }

    /// The same item, with `allow_empty` set.
    pub fn allowing_empty(self, allow_empty: bool) -> Item {
        Item { allow_empty, ..self }
    }

    /// The destination as it appears in logs and metric labels.
    pub fn dest_label(&self) -> String {
        self.dest.display().to_string()
    }
}

fn parse_sha256(text: &str) -> Result<[u8; 32], InvalidItem> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
    let bytes = hex::decode(hex_part).map_err(|_| InvalidItem(format!("sha256 `{text}` is not hexadecimal")))?;
    bytes
        .try_into()
        .map_err(|_| InvalidItem(format!("sha256 `{text}` must be 64 hex digits")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    items: Vec<ItemSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemSpec {
    source: String,
    dest: PathBuf,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    allow_empty: bool,
}

/// Reads and validates a manifest: at least one item, every destination once.
pub fn load(path: &Path) -> Result<Vec<Item>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text).map_err(|error| ManifestError::Invalid {
        path: path.to_path_buf(),
        error,
    })
}

pub fn parse(text: &str) -> Result<Vec<Item>, InvalidItem> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let file: ManifestFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let at = e.path().to_string();
        InvalidItem(if at == "." {
            e.inner().to_string()
        } else {
            format!("{at}: {}", e.inner())
        })
    })?;
    if file.items.is_empty() {
        return Err(InvalidItem("items is empty: nothing to sync".into()));
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(file.items.len());
    for (index, spec) in file.items.into_iter().enumerate() {
        let item = Item::new(&spec.source, spec.dest, spec.sha256.as_deref(), spec.kind)
            .map_err(|e| InvalidItem(format!("items[{index}]: {e}")))?
            .allowing_empty(spec.allow_empty);
        if !seen.insert(item.dest.clone()) {
            return Err(InvalidItem(format!(
                "items[{index}]: dest {} appears twice",
                item.dest.display()
            )));
        }
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_inferred_from_file_names() {
        assert_eq!(Kind::infer(Path::new("/app/data/kb.db")), Kind::Kb);
        assert_eq!(Kind::infer(Path::new("tokens.yaml")), Kind::Tokens);
        assert_eq!(Kind::infer(Path::new("/x/api-tokens.yml")), Kind::Tokens);
        assert_eq!(Kind::infer(Path::new("users.yaml")), Kind::Users);
        assert_eq!(Kind::infer(Path::new("session.key")), Kind::SessionKey);
        assert_eq!(Kind::infer(Path::new("notes.txt")), Kind::Raw);
    }

    #[test]
    fn manifest_rejects_unknown_keys_duplicates_and_bad_hashes() {
        let ok = parse("items:\n  - {source: 's3://b/kb.db', dest: /d/kb.db, sha256: ''}\n  - {source: 'https://h/t.yaml', dest: /d/tokens.yaml, kind: tokens}\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].sha256, None);
        assert_eq!(ok[1].kind, Kind::Tokens);
        assert!(!ok[1].allow_empty);
        let empty_ok =
            parse("items:\n  - {source: 's3://b/t.yaml', dest: /d/tokens.yaml, allow_empty: true}\n").unwrap();
        assert!(empty_ok[0].allow_empty);
        let typo = parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db, sha265: abc}\n")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("sha265"), "{typo}");
        let twice =
            parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db}\n  - {source: 's3://b/j', dest: /d/kb.db}\n")
                .unwrap_err()
                .to_string();
        assert!(twice.contains("twice"), "{twice}");
        let short = parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db, sha256: abcd}\n")
            .unwrap_err()
            .to_string();
        assert!(short.contains("64 hex digits"), "{short}");
        assert!(parse("items: []\n").unwrap_err().to_string().contains("empty"));
        assert!(parse("items:\n  - {source: 'ftp://h/x', dest: /d/x}\n").is_err());
    }

    #[test]
    fn redaction_drops_query_strings_and_user_info() {
        let presigned = Source::parse(
            "https://bucket.s3.amazonaws.com/kb.db?X-Amz-Credential=AKIA&X-Amz-Security-Token=SECRET&X-Amz-Signature=abc",
        )
        .unwrap();
        assert_eq!(presigned.redacted(), "https://bucket.s3.amazonaws.com/kb.db?[redacted]");
        let with_user = Source::parse("http://user:pass@example.com:8080/a/kb.db").unwrap();
        assert_eq!(with_user.redacted(), "http://example.com:8080/a/kb.db");
        assert_eq!(Source::parse("s3://b/k/kb.db").unwrap().redacted(), "s3://b/k/kb.db");
        let bad = Source::parse("ftp://user:pw@host/x?sig=SECRET")
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("SECRET") && !bad.contains("pw"), "{bad}");
    }
}
