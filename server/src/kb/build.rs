//! `postgres-mcp kb build`: Markdown/text files -> chunks -> an FTS5 index in a new kb.db.
//!
//! Documents are split at headings, because a heading is where a topic starts: a search hit then
//! points at the section that answers, with its heading path as context, instead of at a whole
//! file. Long sections are split again at paragraph breaks so one chunk stays a readable snippet.
//! The output is written to a temp file beside the target and renamed over it only when complete,
//! so servers watching the target never see a half-built database. A rebuilt kb.db keeps the mode,
//! owner and group of the one it replaces; a new one is world-readable ([`KB_FILE_MODE`]).

use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::atomic_file::{PendingFile, Permissions, Target};

use super::format::{SCHEMA_SQL, SCHEMA_VERSION};

/// Sections longer than this are split at paragraph breaks.
const MAX_CHUNK_CHARS: usize = 4000;
const EXTENSIONS: &[&str] = &["md", "markdown", "txt"];
/// Mode of a new kb.db: published documentation, read by servers running as another user.
pub const KB_FILE_MODE: u32 = 0o644;

/// One searchable piece of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub source: String,
    pub title: String,
    pub section: String,
    pub content: String,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildReport {
    pub sources: usize,
    pub chunks: usize,
    pub content_hash: String,
}

/// Builds `out` from every Markdown/text file under `from`.
pub fn build<'a>(from: &Path, out: impl Into<Target<'a>>) -> anyhow::Result<BuildReport> {
    let Target { path: out, requested } = out.into();
    let mut files = Vec::new();
    collect(from, &mut files)?;
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no .md, .markdown or .txt files under {}", from.display());
    }
    let mut hasher = Sha256::new();
    let mut chunks = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let source = file
            .strip_prefix(from)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        hasher.update(source.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
        let is_markdown = file.extension().is_none_or(|e| e != "txt");
        chunks.extend(chunk_document(&source, &text, is_markdown));
    }
    let content_hash = hex::encode(hasher.finalize());

    let pending = PendingFile::beside(out, Permissions::new_file(KB_FILE_MODE).with(requested))?;
    {
        let mut db = rusqlite::Connection::open(pending.path())?;
        db.execute_batch(SCHEMA_SQL)?;
        let tx = db.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO chunks (source, title, section, content) VALUES (?1, ?2, ?3, ?4)")?;
            for chunk in &chunks {
                insert.execute(params![chunk.source, chunk.title, chunk.section, chunk.content])?;
            }
            tx.execute("INSERT INTO chunks_fts (rowid, title, section, content) SELECT id, title, section, content FROM chunks", [])?;
            tx.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')", [])?;
            let mut meta = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
            for (key, value) in [
                ("schema_version", SCHEMA_VERSION.to_string()),
                ("built_at", Utc::now().to_rfc3339()),
                ("source_count", files.len().to_string()),
                ("chunk_count", chunks.len().to_string()),
                ("content_hash", content_hash.clone()),
            ] {
                meta.execute(params![key, value])?;
            }
        }
        tx.commit()?;
        db.execute_batch("VACUUM")?;
    }
    pending.commit()?;
    Ok(BuildReport {
        sources: files.len(),
        chunks: chunks.len(),
        content_hash,
    })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits one document into chunks at its headings (Markdown) or paragraphs (text).
pub fn chunk_document(source: &str, text: &str, markdown: bool) -> Vec<Chunk> {
    let file_stem = Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut title: Option<String> = None;
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;

    for line in text.lines() {
        let trimmed = line.trim_start();
        if markdown && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            in_fence = !in_fence;
        }
        let heading = (markdown && !in_fence).then(|| parse_heading(trimmed)).flatten();
        if let Some((level, heading_text)) = heading {
            sections.push((section_path(&headings), std::mem::take(&mut current)));
            headings.retain(|(l, _)| *l < level);
            headings.push((level, heading_text.clone()));
            if level == 1 && title.is_none() {
                title = Some(heading_text);
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    sections.push((section_path(&headings), current));

    let title = title.unwrap_or(file_stem);
    sections
        .into_iter()
        .flat_map(|(section, body)| {
            split_long(body.trim())
                .into_iter()
                .map(move |piece| (section.clone(), piece))
        })
        .filter(|(_, body)| !body.is_empty())
        .map(|(section, content)| Chunk {
            source: source.to_string(),
            title: title.clone(),
            section,
            content,
        })
        .collect()
}

fn parse_heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.starts_with(' ') && !rest.is_empty() {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim();
    (!text.is_empty()).then(|| (level, text.to_string()))
}

fn section_path(headings: &[(usize, String)]) -> String {
    headings.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(" > ")
}

fn split_long(body: &str) -> Vec<String> {
    if body.len() <= MAX_CHUNK_CHARS {
        return vec![body.to_string()];
    }
    let mut pieces = vec![String::new()];
    for paragraph in body.split("\n\n") {
        let last = pieces.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + paragraph.len() > MAX_CHUNK_CHARS {
            pieces.push(String::new());
        }
        let last = pieces.last_mut().expect("never empty");
        if !last.is_empty() {
            last.push_str("\n\n");
        }
        last.push_str(paragraph.trim());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_chunked_by_heading_with_its_path() {
        let text =
            "# Guide\nIntro.\n## Install\nRun it.\n```sh\n# not a heading\n```\n### Linux\napt.\n## Use\nCall it.\n";
        let chunks = chunk_document("docs/guide.md", text, true);
        let sections: Vec<_> = chunks.iter().map(|c| c.section.as_str()).collect();
        assert_eq!(
            sections,
            ["Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Use"]
        );
        assert!(chunks[1].content.contains("# not a heading"));
        assert!(chunks.iter().all(|c| c.title == "Guide" && c.source == "docs/guide.md"));
    }

    #[test]
    fn text_files_use_the_file_name_as_title() {
        let chunks = chunk_document("notes/ops.txt", "# not markdown\nline\n", false);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].title, "ops");
    }

    #[test]
    fn long_sections_are_split_at_paragraphs() {
        let paragraph = "word ".repeat(300);
        let body = [paragraph.trim(); 10].join("\n\n");
        let pieces = split_long(&body);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= MAX_CHUNK_CHARS));
    }
}
