//! `postgres-mcp kb build`: a kb.db from documentation trees (HTML, Markdown, text).
//!
//! Several trees go into one kb.db in one atomic build (`--from` repeated, each optionally naming
//! its product and version) rather than by adding to an existing file: a kb.db is then always the
//! exact image of the trees given, a rebuild drops pages removed upstream, and servers never see a
//! file that mixes two builds.

use std::{collections::BTreeMap, io::IsTerminal, path::PathBuf};

use clap::Subcommand;

use super::permissions::PermissionFlags;
use crate::{
    atomic_file::Target,
    kb::build::{self, BuildOptions, BuildReport, SourceTree},
};

/// Skipped files listed one by one after the summary; past this, only counted.
const SKIPPED_LISTED: usize = 10;

#[derive(Subcommand)]
pub enum KbCommand {
    /// Build kb.db from folders of .html/.htm/.xhtml, .md/.markdown and .txt files (atomic replace).
    ///
    /// Each --from is a tree, optionally with the product and version its documents belong to:
    /// `--from /usr/share/doc/postgresql-doc-15/html:PostgreSQL:15 --from ./docs:MyApp:2.1`.
    /// A Markdown file's front matter (`product:`, `version:`, `title:`) overrides its tree's.
    /// A rebuilt kb.db keeps the mode, owner and group of the one it replaces; a new one is created
    /// with mode 0644. --mode and --group set them explicitly.
    Build {
        /// A documentation tree: DIR[:PRODUCT[:VERSION]]. Repeat for several trees in one kb.db.
        #[arg(long, required = true, value_name = "DIR[:PRODUCT[:VERSION]]")]
        from: Vec<SourceTree>,
        /// The kb.db to write, replaced atomically (the served file may be rebuilt in place).
        #[arg(long)]
        out: PathBuf,
        /// Product of the trees whose --from names none.
        #[arg(long, value_name = "NAME")]
        product: Option<String>,
        /// Version of the trees whose --from names none.
        #[arg(long = "version", value_name = "VERSION")]
        doc_version: Option<String>,
        /// Only files whose path under their tree matches one of these globs (`*` crosses `/`:
        /// `*.html` matches at any depth). Repeatable; default: every supported file.
        #[arg(long, value_name = "GLOB")]
        include: Vec<String>,
        /// Leave out files whose path under their tree matches one of these globs. Repeatable.
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Skip files larger than this many bytes (reported like other skips). Reading a page
        /// takes about 5× its size in memory.
        #[arg(long, value_name = "BYTES", default_value_t = build::DEFAULT_MAX_FILE_SIZE)]
        max_file_size: u64,
        /// Leave out the stored posting lists (`chunk_postings`, `page_postings`): a smaller kb.db
        /// (they add 15–80% to it, most on large vocabularies) whose words are read through FTS5
        /// the first time each is searched on a loaded file, slower that once, the same after.
        #[arg(long)]
        without_posting_lists: bool,
        #[command(flatten)]
        permissions: PermissionFlags,
    },
}

pub fn run(command: KbCommand) -> anyhow::Result<()> {
    let KbCommand::Build {
        from,
        out,
        product,
        doc_version,
        include,
        exclude,
        max_file_size,
        without_posting_lists,
        permissions,
    } = command;
    let trees = from
        .into_iter()
        .map(|mut tree| {
            if tree.product.is_empty() {
                tree.product = product.clone().unwrap_or_default();
            }
            if tree.version.is_empty() {
                tree.version = doc_version.clone().unwrap_or_default();
            }
            tree
        })
        .collect();
    let options = BuildOptions {
        trees,
        include,
        exclude,
        progress: std::io::stderr().is_terminal(),
        max_file_size: Some(max_file_size),
        without_posting_lists,
    };
    let report = build::build_with(&options, Target::new(&out, permissions.requested()))?;
    eprintln!("{}", summary(&out, &report));
    for skipped in report.skipped.iter().take(SKIPPED_LISTED) {
        eprintln!("  skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    if report.skipped.len() > SKIPPED_LISTED {
        eprintln!("  … and {} more skipped", report.skipped.len() - SKIPPED_LISTED);
    }
    Ok(())
}

/// `built kb.db: 1034 documents, 7120 chunks in 6.1 s; skipped 139 (no text: 139); …`
fn summary(out: &std::path::Path, report: &BuildReport) -> String {
    let mut line = format!(
        "built {}: {} documents, {} chunks in {:.1} s (content {})",
        out.display(),
        report.sources,
        report.chunks,
        report.elapsed.as_secs_f64(),
        &report.content_hash[..12]
    );
    if !report.skipped.is_empty() {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for skipped in &report.skipped {
            *kinds.entry(skipped.reason.kind()).or_default() += 1;
        }
        let kinds: Vec<_> = kinds.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
        line.push_str(&format!(
            "; skipped {} files ({})",
            report.skipped.len(),
            kinds.join(", ")
        ));
    }
    if report.excluded > 0 {
        line.push_str(&format!("; {} excluded by --include/--exclude", report.excluded));
    }
    if report.other_files > 0 {
        line.push_str(&format!("; {} files of other types ignored", report.other_files));
    }
    line
}
