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
//! ```
//!
//! Unknown keys are errors, as in the server's configuration: a typo (`sha265:`) must not silently
//! turn a pinned download into an unpinned one.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::source::Source;

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
            Kind::SessionKey => crate::admin::SESSION_KEY_MODE,
            Kind::Tokens | Kind::Users => crate::admin::HASH_FILE_MODE,
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
}

impl Item {
    pub fn new(source: &str, dest: PathBuf, sha256: Option<&str>, kind: Option<Kind>) -> Result<Item, String> {
        let source = Source::parse(source)?;
        if dest.file_name().is_none() || dest.as_os_str().to_string_lossy().ends_with('/') {
            return Err(format!("dest {} is not a file path", dest.display()));
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
        })
    }

    /// The destination as it appears in logs and metric labels.
    pub fn dest_label(&self) -> String {
        self.dest.display().to_string()
    }
}

fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
    let bytes = hex::decode(hex_part).map_err(|_| format!("sha256 `{text}` is not hexadecimal"))?;
    bytes
        .try_into()
        .map_err(|_| format!("sha256 `{text}` must be 64 hex digits"))
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
}

/// Reads and validates a manifest: at least one item, every destination once.
pub fn load(path: &Path) -> Result<Vec<Item>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read manifest {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("manifest {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Item>, String> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let file: ManifestFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let at = e.path().to_string();
        if at == "." {
            e.inner().to_string()
        } else {
            format!("{at}: {}", e.inner())
        }
    })?;
    if file.items.is_empty() {
        return Err("items is empty: nothing to sync".into());
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(file.items.len());
    for (index, spec) in file.items.into_iter().enumerate() {
        let item = Item::new(&spec.source, spec.dest, spec.sha256.as_deref(), spec.kind)
            .map_err(|e| format!("items[{index}]: {e}"))?;
        if !seen.insert(item.dest.clone()) {
            return Err(format!("items[{index}]: dest {} appears twice", item.dest.display()));
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
        let typo = parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db, sha265: abc}\n").unwrap_err();
        assert!(typo.contains("sha265"), "{typo}");
        let twice =
            parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db}\n  - {source: 's3://b/j', dest: /d/kb.db}\n")
                .unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let short = parse("items:\n  - {source: 's3://b/k', dest: /d/kb.db, sha256: abcd}\n").unwrap_err();
        assert!(short.contains("64 hex digits"), "{short}");
        assert!(parse("items: []\n").unwrap_err().contains("empty"));
        assert!(parse("items:\n  - {source: 'ftp://h/x', dest: /d/x}\n").is_err());
    }
}
