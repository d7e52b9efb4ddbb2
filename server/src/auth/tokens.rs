//! API tokens: generation, the `tokens.yaml` format (ours and pgEdge's), and verification.
//!
//! A token is `pgmcp_` + 43 base64url characters (256 random bits). Only its SHA-256 is stored, so a
//! leaked tokens.yaml grants nothing. Because the token has full entropy, a fast hash is right here
//! (bcrypt is for low-entropy passwords): verification is one SHA-256 and a lookup by the digest,
//! flat in the number of tokens, and the final comparison is constant-time.
//!
//! The set is built for files of 100k tokens: digests sorted in one array, found through a
//! directory of their leading bits (expected one or two candidates per lookup, and a binary search
//! of a range, so O(log n) even for crafted digests); names shared as `Arc<str>` with the
//! [`super::Principal`]s handed out; expiry as a number; equal tool scopes shared. About 110 bytes
//! a token (36 for the digest and its index, 40 for the record, the name's allocation), where the
//! YAML parser's events and `serde_yaml::Value` of the same entry are kilobytes. Files in the layout
//! our CLI writes are read by [`super::tokens_layout`] without the YAML parser; anything else is
//! parsed as YAML, with the same result for files both can read.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    principal::AuthFailure,
    scope::{ScopeCache, ToolScope},
    tokens_layout::{self, EntryRef},
};

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

/// One usable token (its digest is the key it is found by).
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub name: Arc<str>,
    pub tools: ToolScope,
    expires: Expiry,
}

/// An expiry instant in Unix nanoseconds. `i64` covers 1677-2262; an expiry after that saturates
/// to "never" and one before to "always", which is what comparing with any `now` in range gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expiry(i64);

impl Expiry {
    const NEVER: Expiry = Expiry(i64::MAX);

    fn at(instant: Option<DateTime<Utc>>) -> Expiry {
        instant.map_or(Expiry::NEVER, |t| Expiry(unix_nanos(t)))
    }

    fn passed(self, now: DateTime<Utc>) -> bool {
        self != Expiry::NEVER && self.0 <= unix_nanos(now)
    }
}

fn unix_nanos(instant: DateTime<Utc>) -> i64 {
    instant
        .timestamp_nanos_opt()
        .unwrap_or(if instant.timestamp() > 0 { i64::MAX } else { i64::MIN })
}

/// The parsed, validated content of tokens.yaml.
#[derive(Debug, Default)]
pub struct TokenSet {
    /// Each digest with the index of its record, sorted by digest; digests are unique.
    keyed: Box<[([u8; 32], u32)]>,
    /// In file order.
    records: Box<[TokenRecord]>,
    /// The digests starting with prefix `p` (their first `32 - shift` bits) are
    /// `keyed[directory[p]..directory[p + 1]]`.
    directory: Box<[u32]>,
    shift: u32,
}

impl TokenSet {
    /// Parses and validates a whole file; any problem rejects the whole file, so a broken edit can
    /// never serve a partial token list. Errors name the entry (`tokens[index] (name)`) or, for
    /// YAML syntax, the line.
    pub fn parse(text: &str) -> Result<TokenSet, String> {
        let mut builder = SetBuilder::with_capacity(text.len() / 128);
        if tokens_layout::read(text, |index, entry| builder.add(index, entry)).is_none() {
            builder = SetBuilder::default();
            read_yaml(text, |index, entry| builder.add(index, entry.view()))?;
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The earliest `expires_at` in the file, as Unix seconds; `None` when no token expires. Tokens
    /// already expired count too: an expired entry left in the file is worth an operator's look.
    pub fn earliest_expiry(&self) -> Option<f64> {
        self.records
            .iter()
            .map(|record| record.expires)
            .filter(|expiry| *expiry != Expiry::NEVER)
            .min_by_key(|expiry| expiry.0)
            .map(|expiry| expiry.0 as f64 / 1e9)
    }

    /// Sets `pgmcp_credential_earliest_expiry_timestamp_seconds{file="tokens"}` (Unix seconds; NaN
    /// when no token expires) for the served file. One series per file, never one per token: the
    /// alert is "the next expiry is near", and the file names which token.
    pub fn record_earliest_expiry(&self) {
        metrics::gauge!("pgmcp_credential_earliest_expiry_timestamp_seconds", "file" => "tokens")
            .set(self.earliest_expiry().unwrap_or(f64::NAN));
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Checks a presented bearer token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<&TokenRecord, AuthFailure> {
        let digest = token_digest(token);
        let (stored, index) = self.lookup(&digest).ok_or(AuthFailure::UnknownToken)?;
        if !bool::from(stored.ct_eq(&digest)) {
            return Err(AuthFailure::UnknownToken);
        }
        let record = &self.records[*index as usize];
        if record.expires.passed(now) {
            return Err(AuthFailure::Expired);
        }
        Ok(record)
    }

    fn lookup(&self, digest: &[u8; 32]) -> Option<&([u8; 32], u32)> {
        let prefix = prefix(digest, self.shift);
        let start = *self.directory.get(prefix)? as usize;
        let end = *self.directory.get(prefix + 1)? as usize;
        let candidates = self.keyed.get(start..end)?;
        let found = candidates.binary_search_by(|(stored, _)| stored.cmp(digest)).ok()?;
        candidates.get(found)
    }
}

fn prefix(digest: &[u8; 32], shift: u32) -> usize {
    (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> shift) as usize
}

/// FxHash's word step with splitmix64's finish (hashbrown indexes by the low bits, which Fx alone
/// leaves poorly mixed). The names come from the operator's own file, so there is no flooding to
/// resist, and SipHash was a tenth of a 100k-token load.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Collects entries in file order and reports the first problem the way a single pass in file
/// order would: per entry the hash, then a duplicate name, then the scope, then a duplicate hash.
#[derive(Default)]
struct SetBuilder {
    /// Digest and entry index of each accepted entry; `records[index]` is its record (entries are
    /// accepted in file order until the first error, so the index is also the position).
    keyed: Vec<([u8; 32], u32)>,
    records: Vec<TokenRecord>,
    names: HashSet<Arc<str>, BuildHasherDefault<NameHasher>>,
    scopes: ScopeCache,
    /// The first error other than a duplicate hash; entries after it are ignored.
    error: Option<String>,
}

impl SetBuilder {
    /// Room for about as many entries as a file of this size holds in our layout (an entry with
    /// its `created_at` is ~130 bytes), so 100k names are not rehashed on the way.
    fn with_capacity(entries: usize) -> SetBuilder {
        SetBuilder {
            keyed: Vec::with_capacity(entries),
            records: Vec::with_capacity(entries),
            names: HashSet::with_capacity_and_hasher(entries, Default::default()),
            ..SetBuilder::default()
        }
    }

    fn add(&mut self, index: usize, entry: EntryRef<'_>) {
        if self.error.is_none()
            && let Err(error) = self.accept(index, entry)
        {
            self.error = Some(error);
        }
    }

    fn accept(&mut self, index: usize, entry: EntryRef<'_>) -> Result<(), String> {
        let digest = parse_hash(entry.hash).map_err(|e| format!("tokens[{index}] ({}): {e}", entry.name))?;
        if self.names.contains(entry.name) {
            return Err(format!("tokens[{index}]: duplicate token name `{}`", entry.name));
        }
        let tools = self
            .scopes
            .scope(entry.tools)
            .map_err(|e| format!("tokens[{index}] ({}): {e}", entry.name))?;
        let position = u32::try_from(self.records.len()).map_err(|_| "too many tokens".to_string())?;
        let name: Arc<str> = entry.name.into();
        self.names.insert(name.clone());
        self.keyed.push((digest, position));
        self.records.push(TokenRecord {
            name,
            tools,
            expires: Expiry::at(entry.expires_at),
        });
        Ok(())
    }

    fn finish(self) -> Result<TokenSet, String> {
        let SetBuilder {
            mut keyed,
            records,
            names,
            error,
            ..
        } = self;
        drop(names);
        // Sorted by digest, then entry index: within a run of equal digests the second one is
        // where a pass in file order would first have seen the hash again. (The leading 8 bytes
        // decide almost every comparison without a call to memcmp.)
        keyed.sort_unstable_by(|a, b| {
            let lead = |k: &([u8; 32], u32)| {
                u64::from_be_bytes([k.0[0], k.0[1], k.0[2], k.0[3], k.0[4], k.0[5], k.0[6], k.0[7]])
            };
            lead(a).cmp(&lead(b)).then_with(|| a.cmp(b))
        });
        let repeated = keyed
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| pair[1].1 as usize)
            .min();
        if let Some(index) = repeated {
            let name = &records[index].name;
            return Err(format!("tokens[{index}] ({name}): the same hash appears twice"));
        }
        if let Some(error) = error {
            return Err(error);
        }
        // About one digest per directory slot: 4 bytes a token at most, for ~1.5 candidates.
        let bits = usize::BITS - keyed.len().max(2).leading_zeros() - 1;
        let shift = 32 - bits.min(24);
        let mut directory = vec![0u32; (1usize << (32 - shift)) + 1];
        for (digest, _) in &keyed {
            directory[prefix(digest, shift) + 1] += 1;
        }
        for i in 1..directory.len() {
            directory[i] += directory[i - 1];
        }
        Ok(TokenSet {
            keyed: keyed.into_boxed_slice(),
            records: records.into_boxed_slice(),
            directory: directory.into_boxed_slice(),
            shift,
        })
    }
}

/// `sha256:<64 hex>` (ours) or bare 64 hex (pgEdge), either case.
fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text).as_bytes();
    let invalid = || "hash must be `sha256:` followed by 64 hex characters".to_string();
    if hex_part.len() != 64 {
        return Err(invalid());
    }
    // A nibble table instead of the `hex` crate's per-character match: a 100k-token file holds
    // 6.4 million hex digits.
    const fn nibbles() -> [u8; 256] {
        let mut table = [0xff; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    }
    const NIBBLE: [u8; 256] = nibbles();
    let mut digest = [0u8; 32];
    let mut bad = 0u8;
    for (byte, pair) in digest.iter_mut().zip(hex_part.chunks_exact(2)) {
        let (high, low) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        bad |= (high | low) & 0xf0;
        *byte = (high << 4) | (low & 0x0f);
    }
    if bad != 0 {
        return Err(invalid());
    }
    Ok(digest)
}

impl EntryRef<'_> {
    pub fn to_entry(self) -> TokenEntry {
        TokenEntry {
            name: self.name.to_string(),
            hash: self.hash.to_string(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            note: self.note.map(str::to_string),
            tools: self.tools.map(<[String]>::to_vec),
        }
    }
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
        let mut entries = Vec::new();
        if tokens_layout::read(text, |_, entry| entries.push(entry.to_entry())).is_none() {
            entries.clear();
            read_yaml(text, |_, entry| entries.push(entry))?;
        }
        Ok(entries)
    }

    /// Serializes entries in our layout.
    pub fn render_file(entries: &[TokenEntry]) -> String {
        let body = serde_yaml::to_string(&OutFile { tokens: entries }).expect("token entries serialize");
        format!("# API tokens for postgres-mcp (SHA-256 hashes only). Edit with `postgres-mcp token`.\n{body}")
    }

    pub(super) fn view(&self) -> EntryRef<'_> {
        EntryRef {
            name: &self.name,
            hash: &self.hash,
            created_at: self.created_at,
            expires_at: self.expires_at,
            note: self.note.as_deref(),
            tools: self.tools.as_deref(),
        }
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

/// The line reader's one promise ([`tokens_layout`]), checked on one file: `Ok(true)` when it read it and the YAML
/// path reads exactly the same entries, `Ok(false)` when it left it to the YAML path, `Err`
/// naming both results when they disagree. The reader's differential tests and the `tokens_yaml` fuzz
/// target (`fuzz/`) both hold the reader to it.
pub(crate) fn line_reader_agrees_with_yaml(text: &str) -> Result<bool, String> {
    let mut entries = Vec::new();
    let mut in_order = true;
    let accepted = tokens_layout::read(text, |index, entry| {
        in_order &= index == entries.len();
        entries.push(entry.to_entry());
    });
    if accepted.is_none() {
        return Ok(false);
    }
    let mut yaml = Vec::new();
    let parsed = read_yaml(text, |_, entry| yaml.push(entry)).map(|()| yaml);
    match parsed {
        Ok(yaml) if in_order && yaml == entries => Ok(true),
        other => Err(format!(
            "the line reader read {entries:?} (indices in order: {in_order}), the YAML parser {other:?}"
        )),
    }
}

/// Reads a tokens file with the YAML parser, calling `visit` with each entry in file order; any
/// error stops the read (the entries visited until then must be discarded).
pub(super) fn read_yaml(text: &str, mut visit: impl FnMut(usize, TokenEntry)) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
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
    // Each entry's `Value` is converted and dropped in turn: the entries are never held twice.
    for (index, (key, value)) in raw.into_iter().enumerate() {
        let entry: RawEntry = serde_yaml::from_value(value).map_err(|e| format!("tokens[{index}]: {e}"))?;
        let name = entry
            .name
            .or(entry.id)
            .or(key)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| format!("tokens[{index}]: missing `name`"))?;
        visit(
            index,
            TokenEntry {
                name,
                hash: entry.hash,
                created_at: entry.created_at,
                expires_at: entry.expires_at,
                note: entry.note.or(entry.annotation),
                tools: entry.tools,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn file_with(entries: &[TokenEntry]) -> TokenSet {
        TokenSet::parse(&TokenEntry::render_file(entries)).unwrap()
    }

    #[test]
    fn earliest_expiry_is_the_soonest_expires_at_and_none_without_one() {
        let at = |text: &str| Some(text.parse::<DateTime<Utc>>().unwrap());
        let never = TokenEntry::new("never", &generate_token(), None, None);
        assert_eq!(file_with(std::slice::from_ref(&never)).earliest_expiry(), None);
        let set = file_with(&[
            TokenEntry::new("late", &generate_token(), at("2031-01-01T00:00:00Z"), None),
            never,
            TokenEntry::new("soon", &generate_token(), at("2030-01-01T00:00:00.5Z"), None),
        ]);
        assert_eq!(set.earliest_expiry(), Some(1_893_456_000.5));
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
    fn errors_name_the_first_broken_entry_in_file_order() {
        let hash = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let entry = |name: &str, hash: &str| format!("  - name: {name}\n    hash: {hash}\n");
        // A repeated hash at entry 2 comes before a repeated name at entry 3...
        let text = format!(
            "tokens:\n{}{}{}{}",
            entry("a", &hash('0')),
            entry("b", &hash('1')),
            entry("c", &hash('0')),
            entry("a", &hash('2'))
        );
        assert_eq!(
            TokenSet::parse(&text).unwrap_err(),
            "tokens[2] (c): the same hash appears twice"
        );
        // ...and after one at entry 1; an unknown tool at entry 2 is never reached.
        let text = format!(
            "tokens:\n{}{}{}  - name: d\n    hash: {}\n    tools: [nope]\n",
            entry("a", &hash('0')),
            entry("a", &hash('1')),
            entry("c", &hash('0')),
            hash('3')
        );
        assert_eq!(
            TokenSet::parse(&text).unwrap_err(),
            "tokens[1]: duplicate token name `a`"
        );
        // An entry the YAML cannot describe wins over every check of the set, wherever it is.
        let text = format!("{text}  - name: e\n    hash: {}\n    created_at: soon\n", hash('4'));
        assert!(TokenSet::parse(&text).unwrap_err().starts_with("tokens[4]: "));
    }

    #[test]
    fn a_token_keeps_its_tools_scope_and_equal_scopes_are_shared() {
        let tokens: Vec<String> = (0..3).map(|_| generate_token()).collect();
        let mut entries: Vec<TokenEntry> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| TokenEntry::new(&format!("t{i}"), t, None, None))
            .collect();
        entries[1].tools = Some(vec!["search_knowledgebase".into()]);
        entries[2].tools = Some(vec!["search_knowledgebase".into()]);
        let set = file_with(&entries);
        let now = Utc::now();
        assert_eq!(set.verify(&tokens[0], now).unwrap().tools, ToolScope::All);
        let (ToolScope::Only(a), ToolScope::Only(b)) = (
            &set.verify(&tokens[1], now).unwrap().tools,
            &set.verify(&tokens[2], now).unwrap().tools,
        ) else {
            panic!("a `tools` list is a restricted scope");
        };
        assert_eq!(&**a, &["search_knowledgebase".into()][..]);
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn expiry_compares_like_the_instants_it_came_from() {
        let at = |text: &str| Expiry::at(Some(text.parse().unwrap()));
        let now: DateTime<Utc> = "2026-01-01T00:00:00.5Z".parse().unwrap();
        assert!(at("2026-01-01T00:00:00.5Z").passed(now));
        assert!(!at("2026-01-01T00:00:00.500000001Z").passed(now));
        assert!(!at("9999-12-31T23:59:59Z").passed(now));
        assert!(at("1000-01-01T00:00:00Z").passed(now));
        assert!(!Expiry::at(None).passed(now));
    }

    #[test]
    fn digests_sharing_a_prefix_are_all_found() {
        // Crafted hashes (bare hex in the file may be anything) crowd one directory slot; the
        // lookup stays a binary search of that slot.
        let mut digests: Vec<[u8; 32]> = (0..2000u32)
            .map(|i| {
                let mut d = [0u8; 32];
                d[28..].copy_from_slice(&i.to_be_bytes());
                d
            })
            .collect();
        digests.extend((0..2000u32).map(|i| token_digest(&i.to_string())));
        let text = digests
            .iter()
            .enumerate()
            .fold("tokens:\n".to_string(), |mut text, (i, d)| {
                text.push_str(&format!("- name: n{i}\n  hash: sha256:{}\n", hex::encode(d)));
                text
            });
        let set = TokenSet::parse(&text).unwrap();
        assert_eq!(set.len(), digests.len());
        for (i, digest) in digests.iter().enumerate() {
            let (_, index) = set.lookup(digest).unwrap();
            assert_eq!(&*set.records[*index as usize].name, format!("n{i}"));
        }
        assert!(set.lookup(&[1u8; 32]).is_none());
        let mut near = digests[0];
        near[27] = 1;
        assert!(set.lookup(&near).is_none());
    }

    #[test]
    fn a_hundred_thousand_tokens_take_the_line_reader_and_load() {
        // Only catches a broken design (a quadratic step, the YAML parser on our own layout): the
        // bound is generous for a debug build on a busy machine; `make bench` measures the figure.
        let tokens: Vec<String> = (0..3).map(|_| generate_token()).collect();
        let mut text = String::from("tokens:\n");
        for i in 0..100_000u32 {
            let digest = match i {
                0 | 50_000 | 99_999 => token_digest(&tokens[(i / 49_999) as usize]),
                _ => Sha256::digest(i.to_le_bytes()).into(),
            };
            text.push_str(&format!(
                "- name: client-{i}\n  hash: sha256:{}\n  created_at: 2026-05-01T10:11:12.123456789Z\n",
                hex::encode(digest)
            ));
        }
        // The design, not the clock: the CLI's layout must take the line reader, never the YAML
        // parser (a timing bound failed on a loaded CI machine).
        let mut read = 0;
        assert!(
            tokens_layout::read(&text, |_, _| read += 1).is_some(),
            "the line reader refused the CLI's layout"
        );
        assert_eq!(read, 100_000);
        let timer = std::time::Instant::now();
        let set = TokenSet::parse(&text).unwrap();
        let elapsed = timer.elapsed();
        eprintln!("100k tokens ({:.1} MB) parsed in {elapsed:?}", text.len() as f64 / 1e6);
        assert_eq!(set.len(), 100_000);
        for token in &tokens {
            assert!(set.verify(token, Utc::now()).is_ok());
        }
        // Only a quadratic step could pass this on any machine.
        assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
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
