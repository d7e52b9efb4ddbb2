//! Markdown and plain-text files as [`Document`]s.
//!
//! Markdown is cut at its ATX headings (`#` … `######`, CommonMark §4.2), outside fenced code
//! blocks, because a heading is where a topic starts. A document may open with YAML front matter
//! (`---` … `---`, the convention of Jekyll, Hugo, MkDocs and Docusaurus) whose `title`, `product`
//! and `version` keys set the document's title and metadata; other keys are ignored, so existing
//! front matter needs no change. Plain text has no structure to cut at: one section, titled by the
//! file name.

use serde::Deserialize;

use super::document::{Document, Section, section_path};

/// Why a Markdown file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("front matter is not valid YAML: {0}")]
pub struct FrontMatterError(String);

/// The front-matter keys the builder uses; scalars of any YAML type (`version: 15`) are taken as
/// their text.
#[derive(Debug, Default, Deserialize)]
struct FrontMatter {
    title: Option<serde_yaml::Value>,
    product: Option<serde_yaml::Value>,
    version: Option<serde_yaml::Value>,
}

/// Reads a Markdown document; `fallback_title` (the file name) is used without `title` front matter
/// or a level-1 heading.
pub fn read_markdown(text: &str, fallback_title: &str) -> Result<Document, FrontMatterError> {
    let (front, body) = split_front_matter(text);
    let front: FrontMatter = match front {
        Some(yaml) if !yaml.trim().is_empty() => {
            serde_yaml::from_str(yaml).map_err(|e| FrontMatterError(e.to_string()))?
        }
        _ => FrontMatter::default(),
    };
    let mut first_h1: Option<String> = None;
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut sections = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        match (!in_fence).then(|| parse_heading(trimmed)).flatten() {
            Some((level, heading)) => {
                push_section(&mut sections, &headings, std::mem::take(&mut current));
                headings.retain(|(l, _)| *l < level);
                headings.push((level, heading.clone()));
                if level == 1 && first_h1.is_none() {
                    first_h1 = Some(heading);
                }
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    push_section(&mut sections, &headings, current);
    Ok(Document {
        title: front
            .title
            .and_then(scalar)
            .or(first_h1)
            .unwrap_or_else(|| fallback_title.to_string()),
        product: front.product.and_then(scalar),
        version: front.version.and_then(scalar),
        sections,
    })
}

/// Reads a plain-text document: one section, titled `title` (the file name).
pub fn read_text(text: &str, title: &str) -> Document {
    let mut sections = Vec::new();
    push_section(&mut sections, &[], text.to_string());
    Document {
        title: title.to_string(),
        product: None,
        version: None,
        sections,
    }
}

fn push_section(sections: &mut Vec<Section>, headings: &[(usize, String)], text: String) {
    let text = text.trim();
    if !text.is_empty() {
        sections.push(Section {
            path: section_path(headings),
            text: text.to_string(),
        });
    }
}

/// The YAML between a first line `---` and the next line `---` (or `...`), and the rest.
fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

fn scalar(value: serde_yaml::Value) -> Option<String> {
    let text = match value {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_cut_at_headings_outside_code_fences() {
        let text =
            "# Guide\nIntro.\n## Install\nRun it.\n```sh\n# not a heading\n```\n### Linux\napt.\n## Use\nCall it.\n";
        let document = read_markdown(text, "guide").unwrap();
        let paths: Vec<_> = document.sections.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Use"]
        );
        assert!(document.sections[1].text.contains("# not a heading"));
        assert_eq!((document.title.as_str(), document.product.as_deref()), ("Guide", None));
    }

    #[test]
    fn front_matter_sets_title_product_and_version() {
        let text = "---\ntitle: Backups\nproduct: PostgreSQL\nversion: 15\nsidebar: 3\n---\n# Heading\nText.\n";
        let document = read_markdown(text, "backups").unwrap();
        assert_eq!(document.title, "Backups");
        assert_eq!(document.product.as_deref(), Some("PostgreSQL"));
        assert_eq!(document.version.as_deref(), Some("15"));
        assert_eq!(document.sections.len(), 1);
        assert!(!document.sections[0].text.contains("sidebar"));
        let broken = read_markdown("---\ntitle: [unclosed\n---\ntext\n", "x").unwrap_err();
        assert!(
            broken.to_string().starts_with("front matter is not valid YAML"),
            "{broken}"
        );
        // A horizontal rule later in the file is not front matter.
        let document = read_markdown("Intro\n---\nmore\n", "x").unwrap();
        assert_eq!(document.sections[0].text, "Intro\n---\nmore");
    }

    #[test]
    fn text_files_are_one_section_titled_by_file_name() {
        let document = read_text("# not markdown\nline\n", "ops");
        assert_eq!(document.title, "ops");
        assert_eq!(document.sections.len(), 1);
        assert_eq!(document.sections[0].path, "");
    }
}
