//! `postgres-mcp kb build`: documentation trees (HTML, Markdown, text) -> chunks -> an FTS5 index
//! in a new kb.db.
//!
//! Each tree is read by the reader for each file's type ([`super::html`], [`super::markdown`]);
//! every document is then split at its headings, because a heading is where a topic starts: a
//! search hit points at the section that answers, with its heading path as context, instead of at
//! a whole file. Long sections are split again at paragraph breaks so one chunk stays a readable
//! snippet. Several trees go into one kb.db, each with its product and version (a Markdown file's
//! front matter overrides its tree's), so one server can answer for several products and versions
//! and a search can be narrowed to some of them.
//!
//! A file that cannot be read (I/O error, larger than `--max-file-size`, not UTF-8, invalid front
//! matter, an HTML page nested deeper than [`html::MAX_NESTING`], no text once navigation is
//! dropped) is skipped and reported with its reason, never silently; a build that would produce
//! no document fails instead of writing an empty kb.db. The output is written to a temp file beside
//! the target and renamed over it only when complete, so servers watching the target never see a
//! half-built database. A rebuilt kb.db keeps the mode, owner and group of the one it replaces; a
//! new one is world-readable ([`KB_FILE_MODE`]).
//!
//! Symbolic links are followed (a docs tree often links `latest -> 17`), but every directory is
//! read once, by (device, inode): a second path to one (`sub/a -> ..`, a loop; or two links to one
//! tree) is reported as skipped instead of being walked again, so a loop cannot make a build run
//! forever or index a page many times.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::{Duration, Instant},
};

use chrono::Utc;
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{ProgressBar, ProgressStyle};
use rusqlite::params;
use sha2::{Digest, Sha256};

use super::{
    document::Document,
    format::{SCHEMA_SQL, SCHEMA_VERSION},
    html, markdown,
};
use crate::atomic_file::{PendingFile, Permissions, Target};

/// Sections longer than this (bytes of UTF-8) are split at paragraph breaks.
const MAX_CHUNK_CHARS: usize = 4000;
/// Mode of a new kb.db: published documentation, read by servers running as another user.
pub const KB_FILE_MODE: u32 = 0o644;

/// How a file is read, by its extension (case ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Markdown,
    Text,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "html" | "htm" | "xhtml" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" => Some(Format::Text),
            _ => None,
        }
    }
}

/// The file types `kb build` reads, for messages.
pub const SUPPORTED: &str = ".html, .htm, .xhtml, .md, .markdown or .txt";

/// One searchable piece of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub section: String,
    pub content: String,
}

/// A documentation tree and the product and version its documents belong to (empty: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    pub root: PathBuf,
    pub product: String,
    pub version: String,
}

impl SourceTree {
    /// A tree without product or version.
    pub fn new(root: impl Into<PathBuf>) -> SourceTree {
        SourceTree {
            root: root.into(),
            product: String::new(),
            version: String::new(),
        }
    }
}

/// `DIR[:PRODUCT[:VERSION]]`, as `kb build --from` takes it. An argument naming an existing
/// directory is that directory, colons and all; otherwise it is cut at its first two colons.
impl FromStr for SourceTree {
    type Err = String;

    fn from_str(spec: &str) -> Result<SourceTree, String> {
        if spec.is_empty() {
            return Err("empty source tree; expected DIR[:PRODUCT[:VERSION]]".into());
        }
        if Path::new(spec).is_dir() {
            return Ok(SourceTree::new(spec));
        }
        let mut parts = spec.splitn(3, ':');
        let root = parts.next().unwrap_or_default();
        if root.is_empty() {
            return Err(format!("{spec:?} names no directory; expected DIR[:PRODUCT[:VERSION]]"));
        }
        Ok(SourceTree {
            root: root.into(),
            product: parts.next().unwrap_or_default().trim().to_string(),
            version: parts.next().unwrap_or_default().trim().to_string(),
        })
    }
}

/// What to build from.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub trees: Vec<SourceTree>,
    /// Globs a file's path relative to its tree must match (any of them); empty: every file of a
    /// supported type. `*` crosses `/`, so `*.html` matches at any depth.
    pub include: Vec<String>,
    /// Globs that exclude a file even when included.
    pub exclude: Vec<String>,
    /// Draw a progress bar on stderr (the CLI sets it when stderr is a terminal).
    pub progress: bool,
    /// Files larger than this many bytes are skipped ([`SkipReason::TooLarge`]); `None`:
    /// [`DEFAULT_MAX_FILE_SIZE`]. Reading a page takes about 5× its size in memory.
    pub max_file_size: Option<u64>,
    /// Leave out the stored posting lists ([`super::postings::write_lists`]): a smaller file, its
    /// words read through FTS5 the first time each is searched on a loaded file.
    pub without_posting_lists: bool,
}

/// Default of [`BuildOptions::max_file_size`]: 16 MiB, far above any page of documentation.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Why a file was left out of the kb.db.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Unreadable(String),
    NotUtf8,
    FrontMatter(String),
    /// Nothing left once navigation, scripts and styles are dropped (a table-of-contents page).
    NoText,
    /// Larger than [`BuildOptions::max_file_size`]: (size, limit) in bytes.
    TooLarge(u64, u64),
    /// An HTML page whose tags nest deeper than this many levels ([`html::MAX_NESTING`]).
    TooDeep(usize),
    /// A directory already read through another path (a symbolic link loop, or a second link).
    DirectoryVisited,
}

impl SkipReason {
    /// A short name, to count skips by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SkipReason::Unreadable(_) => "unreadable",
            SkipReason::NotUtf8 => "not UTF-8",
            SkipReason::FrontMatter(_) => "invalid front matter",
            SkipReason::NoText => "no text",
            SkipReason::TooLarge(..) => "too large",
            SkipReason::TooDeep(_) => "nested too deep",
            SkipReason::DirectoryVisited => "directory already read",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unreadable(error) => write!(f, "cannot read: {error}"),
            SkipReason::NotUtf8 => f.write_str("not UTF-8 text"),
            SkipReason::FrontMatter(error) => f.write_str(error),
            SkipReason::NoText => f.write_str("no text once navigation, scripts and styles are dropped"),
            SkipReason::TooLarge(size, limit) => {
                write!(f, "{size} bytes, larger than the {limit}-byte limit (--max-file-size)")
            }
            SkipReason::TooDeep(limit) => write!(f, "nesting deeper than {limit} levels"),
            SkipReason::DirectoryVisited => {
                f.write_str("directory already read through another path (a symbolic link loop or a second link)")
            }
        }
    }
}

/// A file left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildReport {
    /// Documents indexed.
    pub sources: usize,
    pub chunks: usize,
    /// Files of a supported type that were not indexed.
    pub skipped: Vec<Skipped>,
    /// Files of a supported type left out by `--include`/`--exclude`.
    pub excluded: usize,
    /// Files of other types (images, stylesheets…), not read.
    pub other_files: usize,
    pub content_hash: String,
    pub elapsed: Duration,
}

/// Builds `out` from every supported file under `from`, without product or version.
pub fn build<'a>(from: &Path, out: impl Into<Target<'a>>) -> anyhow::Result<BuildReport> {
    let options = BuildOptions {
        trees: vec![SourceTree::new(from)],
        ..BuildOptions::default()
    };
    build_with(&options, out)
}

/// A document ready to be written.
struct Indexed {
    source: String,
    title: String,
    product: String,
    version: String,
    chunks: Vec<Chunk>,
}

/// Builds `out` from `options`' trees. Errors: no tree, a tree that is not a readable directory, an
/// invalid glob, the same document (product, version, path) in two trees, no document at all, or
/// a failure writing the kb.db; no kb.db is written then.
pub fn build_with<'a>(options: &BuildOptions, out: impl Into<Target<'a>>) -> anyhow::Result<BuildReport> {
    let started = Instant::now();
    let Target { path: out, requested } = out.into();
    if options.trees.is_empty() {
        anyhow::bail!("no source tree given");
    }
    let include = glob_set(&options.include, "--include")?;
    let exclude = glob_set(&options.exclude, "--exclude")?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let (mut excluded, mut other_files) = (0, 0);
    for (index, tree) in options.trees.iter().enumerate() {
        let mut found = Vec::new();
        // Per tree: two trees may be one directory under two versions.
        collect(&tree.root, &mut found, &mut Visited::default(), &mut skipped)?;
        for path in found {
            let relative = relative_path(&tree.root, &path);
            let Some(format) = Format::of(&path) else {
                other_files += 1;
                continue;
            };
            let wanted = include.as_ref().is_none_or(|g| g.is_match(&relative))
                && !exclude.as_ref().is_some_and(|g| g.is_match(&relative));
            if wanted {
                files.push((index, path, relative, format));
            } else {
                excluded += 1;
            }
        }
    }
    files.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));

    let progress = progress_bar(options.progress, files.len() as u64);
    let mut hasher = Sha256::new();
    let mut documents = Vec::new();
    let max_file_size = options.max_file_size.unwrap_or(DEFAULT_MAX_FILE_SIZE);
    let mut seen: HashMap<(String, String, String), PathBuf> = HashMap::new();
    for (index, path, relative, format) in &files {
        progress.inc(1);
        let tree = &options.trees[*index];
        let document = match read_document(path, *format, max_file_size) {
            Ok(document) => document,
            Err(reason) => {
                skipped.push(Skipped {
                    path: path.clone(),
                    reason,
                });
                continue;
            }
        };
        let product = document.product.clone().unwrap_or_else(|| tree.product.clone());
        let version = document.version.clone().unwrap_or_else(|| tree.version.clone());
        let key = (product.to_lowercase(), version.to_lowercase(), relative.clone());
        if let Some(first) = seen.insert(key, path.clone()) {
            anyhow::bail!(
                "{} and {} are the same document ({relative}, product {product:?}, version {version:?}); \
                 give their trees different products or versions, or --exclude one",
                first.display(),
                path.display()
            );
        }
        let chunks = chunk_document(&document);
        for part in [relative.as_str(), &product, &version, &document.title] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        for chunk in &chunks {
            hasher.update(chunk.section.as_bytes());
            hasher.update([0]);
            hasher.update(chunk.content.as_bytes());
            hasher.update([0]);
        }
        documents.push(Indexed {
            source: relative.clone(),
            title: document.title,
            product,
            version,
            chunks,
        });
    }
    progress.finish_and_clear();
    if documents.is_empty() {
        let roots: Vec<_> = options.trees.iter().map(|t| t.root.display().to_string()).collect();
        let reasons: Vec<_> = skipped
            .iter()
            .take(3)
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect();
        anyhow::bail!(
            "no {SUPPORTED} document to index under {} ({} skipped, {} excluded by globs, {} files of other types){}{}",
            roots.join(", "),
            skipped.len(),
            excluded,
            other_files,
            if reasons.is_empty() { "" } else { "; skipped " },
            reasons.join("; ")
        );
    }
    let content_hash = hex::encode(hasher.finalize());
    let chunks = write(
        out,
        requested,
        &documents,
        &content_hash,
        !options.without_posting_lists,
    )?;
    Ok(BuildReport {
        sources: documents.len(),
        chunks,
        skipped,
        excluded,
        other_files,
        content_hash,
        elapsed: started.elapsed(),
    })
}

fn write(
    out: &Path,
    requested: crate::atomic_file::Requested,
    documents: &[Indexed],
    content_hash: &str,
    posting_lists: bool,
) -> anyhow::Result<usize> {
    let pending = PendingFile::beside(out, Permissions::new_file(KB_FILE_MODE).with(requested))?;
    let mut chunk_count = 0;
    {
        let mut db = rusqlite::Connection::open(pending.path())?;
        db.execute_batch(SCHEMA_SQL)?;
        let tx = db.transaction()?;
        {
            let mut insert_document =
                tx.prepare("INSERT INTO documents (source, title, product, version) VALUES (?1, ?2, ?3, ?4)")?;
            let mut insert_chunk =
                tx.prepare("INSERT INTO chunks (document_id, title, section, content) VALUES (?1, ?2, ?3, ?4)")?;
            for document in documents {
                insert_document.execute(params![
                    document.source,
                    document.title,
                    document.product,
                    document.version
                ])?;
                let id = tx.last_insert_rowid();
                for chunk in &document.chunks {
                    insert_chunk.execute(params![id, document.title, chunk.section, chunk.content])?;
                    chunk_count += 1;
                }
            }
            tx.execute(
                "INSERT INTO chunks_fts (rowid, title, section, content) SELECT id, title, section, content FROM chunks",
                [],
            )?;
            tx.execute(
                "INSERT INTO pages_fts (rowid, title, sections, content) \
                 SELECT document_id, min(title), group_concat(section, ' | '), group_concat(content, ' ') \
                 FROM (SELECT document_id, title, section, content FROM chunks ORDER BY id) GROUP BY document_id",
                [],
            )?;
            tx.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')", [])?;
            tx.execute("INSERT INTO pages_fts (pages_fts) VALUES ('optimize')", [])?;
            if posting_lists {
                tx.execute_batch(super::postings::LISTS_SQL)?;
                super::postings::write_lists(&tx, content_hash)?;
            }
            let mut meta = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
            for (key, value) in [
                ("schema_version", SCHEMA_VERSION.to_string()),
                ("built_at", Utc::now().to_rfc3339()),
                ("source_count", documents.len().to_string()),
                ("chunk_count", chunk_count.to_string()),
                ("content_hash", content_hash.to_string()),
            ] {
                meta.execute(params![key, value])?;
            }
        }
        tx.commit()?;
        db.execute_batch("ANALYZE; VACUUM")?;
    }
    pending.commit()?;
    Ok(chunk_count)
}

fn glob_set(globs: &[String], flag: &str) -> anyhow::Result<Option<GlobSet>> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(Glob::new(glob).map_err(|e| anyhow::anyhow!("{flag} {glob:?}: {e}"))?);
    }
    Ok(Some(builder.build()?))
}

fn progress_bar(show: bool, files: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(files);
    if let Ok(style) = ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}") {
        bar.set_style(style);
    }
    bar
}

fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn read_document(path: &Path, format: Format, max_file_size: u64) -> Result<Document, SkipReason> {
    let bytes = read_bounded(path, max_file_size)?;
    let text = String::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let document = match format {
        Format::Html => html::read(&text, &stem).map_err(|e| SkipReason::TooDeep(e.limit))?,
        Format::Markdown => {
            markdown::read_markdown(&text, &stem).map_err(|e| SkipReason::FrontMatter(e.to_string()))?
        }
        Format::Text => markdown::read_text(&text, &stem),
    };
    if document.sections.is_empty() {
        return Err(SkipReason::NoText);
    }
    Ok(document)
}

/// Reads `path` whole unless it is larger than `limit` bytes; the read itself is bounded too, so a
/// file growing after its size was checked cannot exceed it.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SkipReason> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| SkipReason::Unreadable(e.to_string());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > limit {
        return Err(SkipReason::TooLarge(size, limit));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(SkipReason::TooLarge(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Directories already read, by identity (device, inode on Unix; the canonical path elsewhere).
#[derive(Default)]
struct Visited(std::collections::HashSet<DirId>);

#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = PathBuf;

impl Visited {
    /// Records `dir` (its metadata `meta`, links followed); false if it was read before.
    fn first_visit(&mut self, dir: &Path, meta: &std::fs::Metadata) -> bool {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            let _ = dir;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = {
            let _ = meta;
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
        };
        self.0.insert(id)
    }
}

/// Every file under `dir`, following symbolic links, each directory once ([`Visited`]); a
/// directory seen again is added to `skipped`. Iterative, so a deep tree cannot overflow the stack.
fn collect(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut Visited,
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    if !visited.first_visit(dir, &meta) {
        skipped.push(Skipped {
            path: dir.to_path_buf(),
            reason: SkipReason::DirectoryVisited,
        });
        return Ok(());
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    if visited.first_visit(&path, &meta) {
                        pending.push(path);
                    } else {
                        skipped.push(Skipped {
                            path,
                            reason: SkipReason::DirectoryVisited,
                        });
                    }
                }
                _ => out.push(path),
            }
        }
    }
    Ok(())
}

/// Splits a document into chunks: one per section, long sections again at paragraph breaks.
pub fn chunk_document(document: &Document) -> Vec<Chunk> {
    document
        .sections
        .iter()
        .flat_map(|section| {
            split_long(&section.text).into_iter().map(|content| Chunk {
                section: section.path.clone(),
                content,
            })
        })
        .filter(|chunk| !chunk.content.is_empty())
        .collect()
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
    fn long_sections_are_split_at_paragraphs() {
        let paragraph = "word ".repeat(300);
        let body = [paragraph.trim(); 10].join("\n\n");
        let pieces = split_long(&body);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= MAX_CHUNK_CHARS));
    }

    #[test]
    fn source_trees_parse_with_optional_product_and_version() {
        let tree: SourceTree = "docs/html:PostgreSQL:15".parse().unwrap();
        assert_eq!(
            tree,
            SourceTree {
                root: "docs/html".into(),
                product: "PostgreSQL".into(),
                version: "15".into()
            }
        );
        let tree: SourceTree = "docs:pgEdge".parse().unwrap();
        assert_eq!((tree.product.as_str(), tree.version.as_str()), ("pgEdge", ""));
        assert!(":x".parse::<SourceTree>().is_err());
        // An existing directory is taken whole, even with a colon in its name.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a:b");
        std::fs::create_dir(&odd).unwrap();
        let tree: SourceTree = odd.to_str().unwrap().parse().unwrap();
        assert_eq!((tree.root, tree.product), (odd, String::new()));
    }

    fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
        for (name, content) in files {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    #[test]
    fn a_mixed_tree_is_read_by_type_and_unreadable_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        write_tree(
            &docs,
            &[
                ("guide.md", b"---\nproduct: Tools\n---\n# Guide\n## Install\nRun it.\n"),
                (
                    "ref/page.html",
                    b"<title>1.2. Page</title><h1>Page</h1><p>Body text.</p>",
                ),
                ("notes.txt", b"plain notes"),
                ("toc.html", b"<div class=\"toc\"><a href=\"x\">x</a></div>"),
                ("latin1.html", b"<p>caf\xe9</p>"),
                ("bad.md", b"---\ntitle: [\n---\nx"),
                ("style.css", b"p {}"),
                ("drafts/wip.md", b"# WIP\nnot yet"),
            ],
        );
        let options = BuildOptions {
            trees: vec![SourceTree {
                root: docs.clone(),
                product: "Docs".into(),
                version: "1".into(),
            }],
            exclude: vec!["drafts/*".into()],
            ..BuildOptions::default()
        };
        let out = dir.path().join("kb.db");
        let report = build_with(&options, &out).unwrap();
        assert_eq!((report.sources, report.excluded, report.other_files), (3, 1, 1));
        let mut reasons: Vec<_> = report
            .skipped
            .iter()
            .map(|s| (relative_path(&docs, &s.path), s.reason.kind()))
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                ("bad.md".to_string(), "invalid front matter"),
                ("latin1.html".to_string(), "not UTF-8"),
                ("toc.html".to_string(), "no text")
            ]
        );
        let db = rusqlite::Connection::open(&out).unwrap();
        let rows: Vec<(String, String, String, String)> = db
            .prepare("SELECT source, title, product, version FROM documents ORDER BY source")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            ("guide.md", "Guide", "Tools", "1"),
            ("notes.txt", "notes", "Docs", "1"),
            ("ref/page.html", "Page", "Docs", "1"),
        ];
        assert_eq!(rows.len(), expected.len());
        for (row, (source, title, product, version)) in rows.iter().zip(expected) {
            assert_eq!(
                (row.0.as_str(), row.1.as_str(), row.2.as_str(), row.3.as_str()),
                (source, title, product, version)
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_link_loops_are_read_once_and_reported() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        write_tree(
            &docs,
            &[
                (
                    "page.md",
                    b"# Page
text",
                ),
                (
                    "sub/inner.md",
                    b"# Inner
text",
                ),
            ],
        );
        // One loop back to the root, two links to it, and a second link to a real directory.
        symlink("..", docs.join("sub/a")).unwrap();
        symlink("..", docs.join("sub/b")).unwrap();
        symlink("sub", docs.join("latest")).unwrap();
        let out = dir.path().join("kb.db");
        let report = build(&docs, &out).unwrap();
        assert_eq!(report.sources, 2, "each page once: {report:?}");
        let mut loops: Vec<_> = report
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::DirectoryVisited)
            .map(|s| relative_path(&docs, &s.path))
            .collect();
        loops.sort();
        // `latest` and `sub` are one directory: whichever is read second is reported.
        assert_eq!(loops.len(), 3, "{loops:?}");
        assert!(
            loops.contains(&"sub/a".to_string()) || loops.contains(&"latest/a".to_string()),
            "{loops:?}"
        );
        // A single self-loop.
        let single = dir.path().join("single");
        write_tree(
            &single,
            &[(
                "page.md",
                b"# Page
text",
            )],
        );
        symlink(".", single.join("self")).unwrap();
        let report = build(&single, &dir.path().join("single.db")).unwrap();
        assert_eq!(report.sources, 1);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(
            report.skipped[0].reason.to_string(),
            "directory already read through another path (a symbolic link loop or a second link)"
        );
    }

    #[test]
    fn oversized_and_too_deep_pages_are_skipped_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let deep = format!("<p>deep{}", "<div>".repeat(200_000));
        write_tree(
            dir.path(),
            &[
                ("ok.html", b"<h1>Ok</h1><p>fine</p>"),
                ("big.html", &[b'x'; 2048]),
                ("deep.html", deep.as_bytes()),
            ],
        );
        let options = BuildOptions {
            trees: vec![SourceTree::new(dir.path())],
            max_file_size: Some(1024 * 1024),
            ..BuildOptions::default()
        };
        let report = build_with(&options, &dir.path().join("a.db")).unwrap();
        assert_eq!(report.sources, 2, "{report:?}");
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(
            report.skipped[0].reason.to_string(),
            format!("nesting deeper than {} levels", html::MAX_NESTING)
        );
        let options = BuildOptions {
            max_file_size: Some(1024),
            ..options
        };
        let report = build_with(&options, &dir.path().join("b.db")).unwrap();
        assert_eq!(report.sources, 1, "{report:?}");
        let mut reasons: Vec<_> = report.skipped.iter().map(|s| s.reason.to_string()).collect();
        reasons.sort();
        assert_eq!(
            reasons[0],
            format!(
                "{} bytes, larger than the 1024-byte limit (--max-file-size)",
                deep.len()
            )
        );
        assert_eq!(
            reasons[1],
            "2048 bytes, larger than the 1024-byte limit (--max-file-size)"
        );
    }

    #[test]
    fn a_build_with_nothing_to_index_fails_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(
            dir.path(),
            &[("nav.html", b"<nav>menu</nav>"), ("logo.png", b"\x89PNG")],
        );
        let out = dir.path().join("kb.db");
        let error = build(dir.path(), &out).unwrap_err().to_string();
        assert!(
            error.contains("no .html")
                && error.contains("(1 skipped")
                && error.contains("nav.html: no text once navigation"),
            "{error}"
        );
        assert!(!out.exists());
        let options = BuildOptions {
            trees: vec![SourceTree::new(dir.path())],
            include: vec!["[".into()],
            ..BuildOptions::default()
        };
        let error = build_with(&options, &out).unwrap_err().to_string();
        assert!(error.starts_with("--include \"[\""), "{error}");
    }

    #[test]
    fn the_same_document_twice_under_one_product_and_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for tree in ["a", "b"] {
            write_tree(&dir.path().join(tree), &[("index.md", b"# Index\ntext")]);
        }
        let tree = |name: &str, version: &str| SourceTree {
            root: dir.path().join(name),
            product: "P".into(),
            version: version.into(),
        };
        let out = dir.path().join("kb.db");
        let options = BuildOptions {
            trees: vec![tree("a", "1"), tree("b", "1")],
            ..BuildOptions::default()
        };
        let error = build_with(&options, &out).unwrap_err().to_string();
        assert!(error.contains("are the same document (index.md"), "{error}");
        let options = BuildOptions {
            trees: vec![tree("a", "1"), tree("b", "2")],
            ..BuildOptions::default()
        };
        assert_eq!(build_with(&options, &out).unwrap().sources, 2);
    }
}
