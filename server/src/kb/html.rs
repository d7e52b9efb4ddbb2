//! HTML pages as [`Document`]s, through `scraper` (Servo's html5ever: the HTML5 parsing algorithm,
//! so any page a browser shows parses the same way here, however malformed).
//!
//! What a reader of the page sees as its content is kept; what repeats on every page of a site, or
//! is not text, is dropped, because it would match every query and push real answers down:
//! `<head>`, scripts, styles, `<nav>`, `<header>`, `<footer>`, elements marked as navigation
//! (`role="navigation"`, `hidden`, `aria-hidden="true"`), and the navigation blocks of the common
//! documentation generators — DocBook's `navheader`/`navfooter` tables and `toc` lists (PostgreSQL's
//! manual), Sphinx's sidebars and `headerlink` anchors. Headings (`h1`–`h6`) start sections and
//! become the section path, by level; a heading inside an admonition (DocBook's `<h3>Note</h3>`)
//! is text of the section it sits in, not a section of its own. The title is `<title>`, else the
//! first `<h1>`, without its section number ([`strip_numbering`]).

use scraper::{Html, Node, node::Element};

use super::document::{Document, Section, collapse_whitespace, section_path, strip_numbering};

/// Elements whose whole subtree is not page content.
const SKIPPED_ELEMENTS: &[&str] = &[
    "head", "script", "style", "noscript", "template", "nav", "header", "footer", "svg", "iframe", "object", "button",
    "select",
];

/// Classes of navigation blocks: DocBook (`navheader`, `navfooter`, `toc`, `list-of-*`, and the
/// back-of-book index's `indexdiv`, a list of every term pointing elsewhere) and Sphinx
/// (`sphinxsidebar`, `related`, `headerlink`).
const SKIPPED_CLASSES: &[&str] = &[
    "navheader",
    "navfooter",
    "toc",
    "list-of-tables",
    "list-of-figures",
    "list-of-examples",
    "sphinxsidebar",
    "related",
    "headerlink",
    "indexdiv",
];

/// Classes of admonitions, whose headings are labels ("Note", "Warning"), not sections.
const ADMONITION_CLASSES: &[&str] = &["note", "tip", "warning", "caution", "important", "admonition"];

/// Elements after which text continues on a new paragraph.
const BLOCK_ELEMENTS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "aside",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tr",
    "figure",
    "figcaption",
    "hr",
    "address",
    "details",
    "summary",
    "caption",
];

/// Reads one HTML page. `fallback_title` (the file name) is used when the page has neither
/// `<title>` nor `<h1>`. Never fails: html5ever recovers from any markup, as browsers do; a page
/// with no text left comes back with no sections.
pub fn read(html: &str, fallback_title: &str) -> Document {
    let page = Html::parse_document(html);
    let mut reader = Reader::default();
    reader.walk(*page.root_element(), false, false);
    reader.finish();
    let title_tag = page
        .tree
        .nodes()
        .find(|n| n.value().as_element().is_some_and(|e| e.name() == "title"))
        .map(text_of)
        .map(|t| strip_numbering(&t))
        .filter(|t| !t.is_empty());
    let title = title_tag
        .or(reader.first_h1)
        .unwrap_or_else(|| fallback_title.to_string());
    Document {
        title,
        product: None,
        version: None,
        sections: reader.sections,
    }
}

type NodeRef<'a> = ego_tree::NodeRef<'a, Node>;

#[derive(Default)]
struct Reader {
    headings: Vec<(usize, String)>,
    sections: Vec<Section>,
    current: String,
    first_h1: Option<String>,
}

impl Reader {
    fn walk(&mut self, node: NodeRef<'_>, preformatted: bool, in_admonition: bool) {
        match node.value() {
            Node::Text(text) => self.text(text, preformatted),
            Node::Element(element) => self.element(node, element, preformatted, in_admonition),
            _ => {}
        }
    }

    fn element(&mut self, node: NodeRef<'_>, element: &Element, preformatted: bool, in_admonition: bool) {
        let name = element.name();
        if skipped(element) {
            return;
        }
        if let Some(level) = heading_level(name) {
            let heading = strip_numbering(&text_of(node));
            if in_admonition {
                self.paragraph();
                self.current.push_str(&heading);
                self.paragraph();
            } else if !heading.is_empty() {
                self.heading(level, heading);
            }
            return;
        }
        match name {
            "br" => self.current.push('\n'),
            "td" | "th" => self.space(),
            _ => {}
        }
        let block = BLOCK_ELEMENTS.contains(&name);
        if block {
            self.paragraph();
        }
        let in_admonition = in_admonition || element.classes().any(|c| ADMONITION_CLASSES.contains(&c));
        let preformatted = preformatted || name == "pre";
        for child in node.children() {
            self.walk(child, preformatted, in_admonition);
        }
        if block {
            self.paragraph();
        }
    }

    fn text(&mut self, text: &str, preformatted: bool) {
        if preformatted {
            self.current.push_str(text);
            return;
        }
        if text.starts_with(char::is_whitespace) {
            self.space();
        }
        let words = collapse_whitespace(text);
        if words.is_empty() {
            return;
        }
        self.current.push_str(&words);
        if text.ends_with(char::is_whitespace) {
            self.space();
        }
    }

    /// One space unless the text already ends in whitespace (or is empty).
    fn space(&mut self) {
        if !self.current.is_empty() && !self.current.ends_with(char::is_whitespace) {
            self.current.push(' ');
        }
    }

    /// A paragraph break: the builder splits long sections at these.
    fn paragraph(&mut self) {
        let trimmed = self.current.trim_end_matches([' ', '\t']).len();
        self.current.truncate(trimmed);
        if !self.current.is_empty() && !self.current.ends_with("\n\n") {
            self.current
                .push_str(if self.current.ends_with('\n') { "\n" } else { "\n\n" });
        }
    }

    fn heading(&mut self, level: usize, heading: String) {
        self.flush();
        if level == 1 && self.first_h1.is_none() {
            self.first_h1 = Some(heading.clone());
        }
        self.headings.retain(|(l, _)| *l < level);
        self.headings.push((level, heading));
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.current);
        let text = text.trim();
        if !text.is_empty() {
            self.sections.push(Section {
                path: section_path(&self.headings),
                text: text.to_string(),
            });
        }
    }

    fn finish(&mut self) {
        self.flush();
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn skipped(element: &Element) -> bool {
    SKIPPED_ELEMENTS.contains(&element.name())
        || element.classes().any(|c| SKIPPED_CLASSES.contains(&c))
        || element.attr("role") == Some("navigation")
        || element.attr("hidden").is_some()
        || element.attr("aria-hidden") == Some("true")
}

/// The text under `node`, whitespace collapsed, skipping what [`skipped`] drops (a heading's
/// `headerlink` anchor, say).
fn text_of(node: NodeRef<'_>) -> String {
    let mut out = String::new();
    collect_text(node, &mut out);
    collapse_whitespace(&out)
}

fn collect_text(node: NodeRef<'_>, out: &mut String) {
    match node.value() {
        Node::Text(text) => out.push_str(text),
        Node::Element(element) if !skipped(element) => {
            for child in node.children() {
                collect_text(child, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a page of PostgreSQL's manual (DocBook XSL output), shortened.
    const DOCBOOK_PAGE: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>27.4. Hot Standby</title>
<style>body { color: red }</style><script>var standby = 1;</script></head><body>
<div class="navheader"><table width="100%"><tr><th colspan="3">27.4. Hot Standby</th></tr>
<tr><td><a href="prev.html">Prev</a></td><td>Chapter 27. High Availability</td><td>Next</td></tr></table><hr /></div>
<div class="sect1" id="HOT-STANDBY"><div class="titlepage"><h2 class="title">27.4. Hot Standby</h2></div>
<div class="toc"><dl><dt><span class="sect2"><a href="#A">27.4.1. User's Overview</a></span></dt></dl></div>
<p>Hot standby is the term used to describe the ability to connect to
    the server and run <code>read-only</code> queries.</p>
<div class="sect2"><div class="titlepage"><h3 class="title">27.4.1. User's Overview</h3></div>
<p>When the <a href="x.html">hot_standby</a> parameter is set</p>
<div class="note"><h3 class="title">Note</h3><p>Snapshots may differ.</p></div>
<pre class="programlisting">SELECT 1;
SELECT   2;</pre>
<table><tr><td>a</td><td>b</td></tr></table>
</div>
<div class="sect2"><h3 class="title">27.4.2. Handling Query Conflicts</h3><p>Conflicts happen.</p></div>
</div>
<div class="navfooter"><table><tr><td>Prev</td><td>Home</td></tr></table></div>
</body></html>"##;

    #[test]
    fn a_docbook_page_keeps_content_and_headings_and_drops_navigation() {
        let document = read(DOCBOOK_PAGE, "hot-standby");
        assert_eq!(document.title, "Hot Standby");
        let paths: Vec<_> = document.sections.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Hot Standby",
                "Hot Standby > User's Overview",
                "Hot Standby > Handling Query Conflicts"
            ]
        );
        assert_eq!(
            document.sections[0].text,
            "Hot standby is the term used to describe the ability to connect to the server and run read-only queries."
        );
        let overview = &document.sections[1].text;
        assert!(
            overview.starts_with("When the hot_standby parameter is set\n\nNote\n\nSnapshots may differ."),
            "{overview:?}"
        );
        assert!(
            overview.contains("SELECT 1;\nSELECT   2;"),
            "preformatted text is kept as is: {overview:?}"
        );
        assert!(overview.contains("a b"), "{overview:?}");
        let all: String = document.sections.iter().map(|s| s.text.as_str()).collect();
        for dropped in ["Prev", "Home", "Chapter 27", "var standby", "color: red", "27.4.1"] {
            assert!(!all.contains(dropped), "{dropped:?} should be dropped: {all:?}");
        }
    }

    #[test]
    fn the_title_falls_back_to_h1_then_the_file_name() {
        let document = read(
            "<h1>Install <a class=\"headerlink\">¶</a></h1><p>Run it.</p>",
            "install",
        );
        assert_eq!(document.title, "Install");
        assert_eq!(document.sections[0].path, "Install");
        let document = read("<p>Only text.</p>", "notes");
        assert_eq!(document.title, "notes");
        assert_eq!(document.sections[0].path, "");
    }

    #[test]
    fn malformed_markup_is_read_as_a_browser_would() {
        let document = read("<title>T</title><p>one<p>two <b>bold<i> mixed</b> end", "x");
        assert_eq!(document.sections[0].text, "one\n\ntwo bold mixed end");
        assert!(read("<html><nav>menu</nav></html>", "x").sections.is_empty());
    }
}
