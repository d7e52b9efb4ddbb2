//! Generated inputs: token files of any size and a synthetic documentation corpus.
//!
//! Both are made with the server's own library (`TokenEntry`, `generate_token`, `kb::build`), so the
//! files are exactly what `postgres-mcp token create` and `kb build` would write. The corpus is
//! deterministic (a fixed seed): two runs search the same documents with the same queries.

use std::path::Path;

use anyhow::Context;
use postgres_mcp::auth::tokens::{TokenEntry, generate_token};

/// Writes a tokens.yaml of `count` entries, `token` among them (in the middle: with a hash map the
/// position must not matter, and a linear scan would show it).
pub fn write_tokens(path: &Path, count: usize, token: &str) -> anyhow::Result<()> {
    let mut entries: Vec<TokenEntry> = (0..count.saturating_sub(1))
        .map(|i| TokenEntry::new(&format!("client-{i}"), &generate_token(), None, None))
        .collect();
    entries.insert(entries.len() / 2, TokenEntry::new("bench", token, None, None));
    std::fs::write(path, TokenEntry::render_file(&entries)).with_context(|| format!("cannot write {}", path.display()))
}

/// splitmix64: a tiny, seedable generator; the corpus needs repeatability, not quality.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Words that real PostgreSQL documentation uses, ahead of the synthetic ones so they are common.
const SEED_WORDS: &[&str] = &[
    "replication",
    "standby",
    "primary",
    "wal",
    "checkpoint",
    "vacuum",
    "autovacuum",
    "index",
    "btree",
    "gin",
    "gist",
    "brin",
    "query",
    "planner",
    "statistics",
    "analyze",
    "table",
    "partition",
    "schema",
    "role",
    "privilege",
    "grant",
    "connection",
    "pooling",
    "timeout",
    "lock",
    "deadlock",
    "transaction",
    "isolation",
    "snapshot",
    "backup",
    "restore",
    "archive",
    "recovery",
    "failover",
    "slot",
    "logical",
    "physical",
    "subscription",
    "publication",
    "extension",
    "trigger",
    "function",
    "sequence",
    "tablespace",
    "toast",
    "bloat",
    "latency",
    "throughput",
    "memory",
    "buffer",
    "cache",
    "shared",
    "work_mem",
    "parallel",
    "worker",
    "monitoring",
    "metrics",
    "log",
    "audit",
    "upgrade",
    "version",
    "configuration",
    "parameter",
    "tuning",
    "security",
    "authentication",
    "password",
    "certificate",
    "encryption",
    "json",
    "jsonb",
    "array",
    "text",
    "search",
    "tsvector",
    "collation",
    "encoding",
    "constraint",
    "foreign",
    "key",
    "unique",
    "check",
    "view",
    "materialized",
    "refresh",
    "cluster",
    "node",
    "lag",
    "storage",
    "disk",
    "io",
    "cpu",
    "network",
    "operator",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "pe", "si", "da", "gu", "fe", "zo", "bi", "xa", "qu", "ri", "no", "te",
    "ly", "wa", "ho", "ju", "ce",
];

/// A vocabulary: the seed words, then synthetic words up to `size`.
fn vocabulary(rng: &mut Rng, size: usize) -> Vec<String> {
    let mut words: Vec<String> = SEED_WORDS.iter().map(|w| w.to_string()).collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < size {
        let syllables = 2 + rng.below(3);
        let word: String = (0..syllables).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// A word drawn with a skewed (roughly Zipf-like) frequency: low indexes are common.
fn word<'a>(rng: &mut Rng, words: &'a [String]) -> &'a str {
    let index = (rng.unit().powi(3) * words.len() as f64) as usize;
    &words[index.min(words.len() - 1)]
}

fn sentence(rng: &mut Rng, words: &[String], length: usize) -> String {
    let mut out: Vec<&str> = (0..length).map(|_| word(rng, words)).collect();
    let first = out[0].to_string();
    let mut capital = first[..1].to_uppercase();
    capital.push_str(&first[1..]);
    out[0] = &capital;
    format!("{}.", out.join(" "))
}

/// What [`generate_corpus`] wrote.
pub struct Corpus {
    pub documents: usize,
    pub bytes: u64,
    /// Search queries over the same vocabulary (2-3 words each).
    pub queries: Vec<String>,
    /// Questions as a model sends them: 3-12 words drawn with the corpus's own word frequencies, so
    /// they carry its commonest words as often as English questions carry `the` and `how`.
    pub questions: Vec<String>,
}

/// Writes `count` Markdown documents (a title, 2-5 sections of 1-3 paragraphs) under `dir`.
pub fn generate_corpus(dir: &Path, count: usize, seed: u64) -> anyhow::Result<Corpus> {
    let mut rng = Rng::new(seed);
    let words = vocabulary(&mut rng, 20_000);
    let mut bytes = 0u64;
    for doc in 0..count {
        let subdir = dir.join(format!("part-{:03}", doc / 500));
        if doc % 500 == 0 {
            std::fs::create_dir_all(&subdir)?;
        }
        let mut text = format!(
            "# {} {} {}\n\n{}\n",
            word(&mut rng, &words),
            word(&mut rng, &words),
            doc,
            sentence(&mut rng, &words, 12)
        );
        for _ in 0..2 + rng.below(4) {
            text.push_str(&format!("\n## {} {}\n", word(&mut rng, &words), word(&mut rng, &words)));
            for _ in 0..1 + rng.below(3) {
                let sentences: Vec<String> = (0..2 + rng.below(4))
                    .map(|_| {
                        let length = 6 + rng.below(14);
                        sentence(&mut rng, &words, length)
                    })
                    .collect();
                text.push('\n');
                text.push_str(&sentences.join(" "));
                text.push('\n');
            }
        }
        bytes += text.len() as u64;
        std::fs::write(subdir.join(format!("doc-{doc:05}.md")), text)?;
    }
    let queries = (0..256)
        .map(|_| {
            let n = 2 + rng.below(2);
            (0..n).map(|_| word(&mut rng, &words)).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let questions = (0..256)
        .map(|_| {
            let n = 3 + rng.below(10);
            (0..n).map(|_| word(&mut rng, &words)).collect::<Vec<_>>().join(" ")
        })
        .collect();
    Ok(Corpus {
        documents: count,
        bytes,
        queries,
        questions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_repeatable_and_searchable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = generate_corpus(a.path(), 20, 7).unwrap();
        let second = generate_corpus(b.path(), 20, 7).unwrap();
        assert_eq!(
            (first.bytes, &first.queries, &first.questions),
            (second.bytes, &second.queries, &second.questions)
        );
        assert!(first.questions.iter().all(|q| (3..=12).contains(&q.split(' ').count())));
        let report = postgres_mcp::kb::build::build(a.path(), &a.path().join("kb.db")).unwrap();
        assert_eq!(report.sources, 20);
    }

    #[test]
    fn token_files_hold_the_bench_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let token = generate_token();
        write_tokens(&path, 10, &token).unwrap();
        let set = postgres_mcp::auth::tokens::TokenSet::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(set.len(), 10);
        assert!(set.verify(&token, chrono::Utc::now()).is_ok());
    }
}
