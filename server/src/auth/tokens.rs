//! API tokens: generation, the `tokens.yaml` format (ours and pgEdge's), and O(1) verification.
//!
//! A token is `pgmcp_` + 43 base64url characters (256 random bits). Only its SHA-256 is stored, so a
//! leaked tokens.yaml grants nothing. Because the token has full entropy, a fast hash is right here
//! (bcrypt is for low-entropy passwords): verification is one SHA-256 and one hash-map lookup keyed by
//! the digest, flat in the number of tokens, and the final comparison is constant-time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{principal::AuthFailure, scope::ToolScope};

pub const TOKEN_PREFIX: &str = "pgmcp_";

/// A freshly generated token; shown once, then only its digest is kept.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of the whole token string, as stored in tokens.yaml.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One usable token.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub name: Arc<str>,
    digest: [u8; 32],
    pub expires_at: Option<DateTime<Utc>>,
    pub tools: ToolScope,
}

/// The parsed, validated content of tokens.yaml.
#[derive(Debug, Default)]
pub struct TokenSet {
    by_digest: HashMap<[u8; 32], TokenRecord>,
}

impl TokenSet {
    /// Parses and validates a whole file; any problem rejects the whole file, so a broken edit can
    /// never serve a partial token list.
    pub fn parse(text: &str) -> Result<TokenSet, String> {
        let entries = TokenEntry::parse_file(text)?;
        let mut by_digest = HashMap::with_capacity(entries.len());
        let mut names = HashSet::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let digest = parse_hash(&entry.hash).map_err(|e| format!("tokens[{index}] ({}): {e}", entry.name))?;
            if !names.insert(entry.name.clone()) {
                return Err(format!("tokens[{index}]: duplicate token name `{}`", entry.name));
            }
            let tools = ToolScope::from_entry(entry.tools.as_deref())
                .map_err(|e| format!("tokens[{index}] ({}): {e}", entry.name))?;
            let record = TokenRecord {
                name: entry.name.clone().into(),
                digest,
                expires_at: entry.expires_at,
                tools,
            };
            if by_digest.insert(digest, record).is_some() {
                return Err(format!("tokens[{index}] ({}): the same hash appears twice", entry.name));
            }
        }
        Ok(TokenSet { by_digest })
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Checks a presented bearer token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<&TokenRecord, AuthFailure> {
        let digest = token_digest(token);
        let record = self.by_digest.get(&digest).ok_or(AuthFailure::UnknownToken)?;
        if !bool::from(record.digest.ct_eq(&digest)) {
            return Err(AuthFailure::UnknownToken);
        }
        match record.expires_at {
            Some(expiry) if expiry <= now => Err(AuthFailure::Expired),
            _ => Ok(record),
        }
    }
}

/// `sha256:<64 hex>` (ours) or bare 64 hex (pgEdge).
fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut digest)
        .map_err(|_| "hash must be `sha256:` followed by 64 hex characters".to_string())?;
    Ok(digest)
}

/// One entry as it stands in the file; kept whole so CLI edits preserve the others exactly.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TokenEntry {
    pub name: String,
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Only these tools; absent: every tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

/// The fields accepted in an entry: ours (`name`) and pgEdge's (`id`, `annotation`, `connections`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Option<String>,
    id: Option<String>,
    hash: String,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    note: Option<String>,
    tools: Option<Vec<String>>,
    annotation: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    connections: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tokens: Value,
}

#[derive(Serialize)]
struct OutFile<'a> {
    tokens: &'a [TokenEntry],
}

impl TokenEntry {
    /// Reads every entry of a tokens file. `tokens` may be a list (ours) or a map keyed by id
    /// (pgEdge's layout); an empty file or `tokens: []` is an empty set.
    pub fn parse_file(text: &str) -> Result<Vec<TokenEntry>, String> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let file: RawFile = serde_yaml::from_str(text).map_err(|e| format!("not a valid tokens file: {e}"))?;
        let raw: Vec<(Option<String>, Value)> = match file.tokens {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items.into_iter().map(|v| (None, v)).collect(),
            Value::Mapping(map) => map
                .into_iter()
                .map(|(k, v)| {
                    k.as_str()
                        .map(|id| (Some(id.to_string()), v))
                        .ok_or("tokens: map keys must be strings")
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("`tokens` must be a list of entries".into()),
        };
        raw.into_iter()
            .enumerate()
            .map(|(index, (key, value))| {
                let entry: RawEntry = serde_yaml::from_value(value).map_err(|e| format!("tokens[{index}]: {e}"))?;
                let name = entry
                    .name
                    .or(entry.id)
                    .or(key)
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| format!("tokens[{index}]: missing `name`"))?;
                Ok(TokenEntry {
                    name,
                    hash: entry.hash,
                    created_at: entry.created_at,
                    expires_at: entry.expires_at,
                    note: entry.note.or(entry.annotation),
                    tools: entry.tools,
                })
            })
            .collect()
    }

    /// Serializes entries in our layout.
    pub fn render_file(entries: &[TokenEntry]) -> String {
        let body = serde_yaml::to_string(&OutFile { tokens: entries }).expect("token entries serialize");
        format!("# API tokens for postgres-mcp (SHA-256 hashes only). Edit with `postgres-mcp token`.\n{body}")
    }

    /// A new entry for a freshly generated token.
    pub fn new(name: &str, token: &str, expires_at: Option<DateTime<Utc>>, note: Option<String>) -> TokenEntry {
        TokenEntry {
            name: name.to_string(),
            hash: format!("sha256:{}", hex::encode(token_digest(token))),
            created_at: Some(Utc::now()),
            expires_at,
            note,
            tools: None,
        }
    }
}

/// Names in the file mapped to entries; used by `token list`.
pub fn entries_by_name(entries: &[TokenEntry]) -> BTreeMap<&str, &TokenEntry> {
    entries.iter().map(|e| (e.name.as_str(), e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn file_with(entries: &[TokenEntry]) -> TokenSet {
        TokenSet::parse(&TokenEntry::render_file(entries)).unwrap()
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let token = generate_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(token, generate_token());
    }

    #[test]
    fn a_listed_token_verifies_and_others_do_not() {
        let token = generate_token();
        let set = file_with(&[TokenEntry::new("ci", &token, None, None)]);
        assert_eq!(&*set.verify(&token, Utc::now()).unwrap().name, "ci");
        assert_eq!(
            set.verify(&generate_token(), Utc::now()).unwrap_err(),
            AuthFailure::UnknownToken
        );
        let mut flipped = token.clone().into_bytes();
        flipped[10] ^= 1;
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(set.verify(&flipped, Utc::now()).unwrap_err(), AuthFailure::UnknownToken);
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let token = generate_token();
        let set = file_with(&[TokenEntry::new(
            "old",
            &token,
            Some(Utc::now() - Duration::seconds(1)),
            None,
        )]);
        assert_eq!(set.verify(&token, Utc::now()).unwrap_err(), AuthFailure::Expired);
        let set = file_with(&[TokenEntry::new(
            "new",
            &token,
            Some(Utc::now() + Duration::days(1)),
            None,
        )]);
        assert!(set.verify(&token, Utc::now()).is_ok());
    }

    #[test]
    fn the_pgedge_layout_is_accepted() {
        let token = "wK7vN2xR8pQ3mL9cT6fH4jY1sZ5aB8dE0uV3gM7nW2k=";
        let text = format!(
            "tokens:\n  prod-api:\n    hash: \"{}\"\n    annotation: Production\n    created_at: 2025-01-15T08:30:00Z\n    expires_at: null\n",
            hex::encode(token_digest(token))
        );
        let set = TokenSet::parse(&text).unwrap();
        assert_eq!(&*set.verify(token, Utc::now()).unwrap().name, "prod-api");
        let listed = format!(
            "tokens:\n  - id: a\n    note: x\n    hash: {}\n",
            hex::encode(token_digest(token))
        );
        assert!(TokenSet::parse(&listed).unwrap().verify(token, Utc::now()).is_ok());
    }

    #[test]
    fn broken_files_are_rejected_with_the_reason() {
        assert!(
            TokenSet::parse("tokens: [")
                .unwrap_err()
                .contains("not a valid tokens file")
        );
        assert!(
            TokenSet::parse("tokens:\n  - name: a\n    hash: sha256:abc\n")
                .unwrap_err()
                .contains("64 hex")
        );
        let h = format!("sha256:{}", "0".repeat(64));
        let dup = format!(
            "tokens:\n  - name: a\n    hash: {h}\n  - name: a\n    hash: sha256:{}\n",
            "1".repeat(64)
        );
        assert!(TokenSet::parse(&dup).unwrap_err().contains("duplicate token name"));
        let same = format!("tokens:\n  - name: a\n    hash: {h}\n  - name: b\n    hash: {h}\n");
        assert!(TokenSet::parse(&same).unwrap_err().contains("same hash"));
        assert!(
            TokenSet::parse("tokens:\n  - name: a\n    hash: x\n    expire_at: 1\n")
                .unwrap_err()
                .contains("expire_at")
        );
        assert!(TokenSet::parse("tokenz: []").unwrap_err().contains("tokenz"));
    }

    #[test]
    fn empty_files_are_an_empty_set() {
        assert!(TokenSet::parse("").unwrap().is_empty());
        assert!(TokenSet::parse("tokens: []\n").unwrap().is_empty());
    }

    #[test]
    fn rendering_round_trips() {
        let entries = vec![TokenEntry::new("a", &generate_token(), None, Some("note".into()))];
        assert_eq!(
            TokenEntry::parse_file(&TokenEntry::render_file(&entries)).unwrap(),
            entries
        );
    }
}
