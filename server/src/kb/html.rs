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
//!
//! Hostile or broken pages are bounded: html5ever's tree builder scans its stack of open elements
//! for every tag, so a page nested `d` levels deep costs O(d²) to parse (10 000 nested `<div>`: seconds;
//! 20 000: tens of seconds). A linear pre-scan ([`nesting_depth`]) refuses a page whose tags nest
//! deeper than [`MAX_NESTING`] before html5ever sees it, and the walk over the parsed tree uses an
//! explicit stack, never the call stack, so no page can overflow it.

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

/// Deepest nesting of elements a page may have. Real documentation stays under ~50 levels; the
/// bound keeps html5ever's cost small: each tag costs up to the depth of open elements, so a page
/// costs at most its tag count × this (see the module doc).
pub const MAX_NESTING: usize = 512;

/// A page refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The limit that was exceeded ([`MAX_NESTING`]).
    pub limit: usize,
}

/// Reads one HTML page. `fallback_title` (the file name) is used when the page has neither
/// `<title>` nor `<h1>`. html5ever recovers from any markup, as browsers do; a page with no text
/// left comes back with no sections. Errors: [`TooDeep`] when the page's tags nest deeper than
/// [`MAX_NESTING`] levels.
pub fn read(html: &str, fallback_title: &str) -> Result<Document, TooDeep> {
    if nesting_depth(html, MAX_NESTING) > MAX_NESTING {
        return Err(TooDeep { limit: MAX_NESTING });
    }
    let page = Html::parse_document(html);
    let mut reader = Reader::default();
    reader.walk(*page.root_element());
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
    Ok(Document {
        title,
        product: None,
        version: None,
        sections: reader.sections,
    })
}

/// Elements without an end tag (HTML §13.1.2 "void elements").
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
];

/// Elements whose end tag may be omitted (HTML §13.1.2.4): an unclosed `<p>` or `<li>` is closed by
/// the next one, so counting them would take a long old-style page for a deep one.
const OPTIONAL_END_TAG: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup",
    "colgroup", "caption", "rb", "rt", "rp", "rtc",
];

/// Elements whose content is raw text (no tags inside): `<` in a script is not a tag.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
];

/// An estimate of how deep the tags of `html` nest, linear in its length, without building a
/// tree: start tags of elements that need an end tag open a level, end tags close one; comments,
/// doctype, void and self-closing elements, and raw-text content are passed over. Stops counting
/// past `stop` (the answer is then `stop + 1`). An over-estimate for unbalanced markup, which is
/// why [`MAX_NESTING`] is generous.
pub fn nesting_depth(html: &str, stop: usize) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    // The depth at which an `<svg>` or `<math>` opened: only there is `<x/>` self-closing; in
    // HTML the slash is ignored and `<div/>` opens a div.
    let mut foreign: Option<usize> = None;
    while let Some(offset) = memchr_lt(&bytes[at..]) {
        at += offset + 1;
        let rest = &html[at..];
        if rest.starts_with("!--") {
            at += rest.find("-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .unwrap_or(rest.len() - name_start);
        if name_len == 0 {
            continue;
        }
        let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = rest.find('>').map_or(rest.len(), |end| end + 1);
        let self_closing = rest[..tag_end].ends_with("/>");
        at += tag_end;
        if VOID_ELEMENTS.contains(&name.as_str()) || OPTIONAL_END_TAG.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            if foreign.is_some_and(|opened| depth < opened) {
                foreign = None;
            }
        } else if !(self_closing && foreign.is_some()) {
            if RAW_TEXT.contains(&name.as_str()) {
                at += find_end_tag(&bytes[at..], name.as_bytes()).unwrap_or(bytes.len() - at);
                continue;
            }
            depth += 1;
            if foreign.is_none() && (name == "svg" || name == "math") {
                foreign = Some(depth);
            }
            deepest = deepest.max(depth);
            if deepest > stop {
                return stop + 1;
            }
        }
    }
    deepest
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<')
}

/// Where `</name` starts in `bytes`, ASCII case-insensitively.
fn find_end_tag(bytes: &[u8], name: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(offset) = memchr_lt(&bytes[at..]) {
        at += offset;
        let tag = &bytes[at + 1..];
        if tag.first() == Some(&b'/') && tag.len() > name.len() && tag[1..=name.len()].eq_ignore_ascii_case(name) {
            return Some(at);
        }
        at += 1;
    }
    None
}

type NodeRef<'a> = ego_tree::NodeRef<'a, Node>;

/// One step of [`Reader::walk`]: read a node, or close an element once its children are read.
enum Step<'a> {
    Enter {
        node: NodeRef<'a>,
        preformatted: bool,
        in_admonition: bool,
    },
    Leave {
        block: bool,
    },
}

#[derive(Default)]
struct Reader {
    headings: Vec<(usize, String)>,
    sections: Vec<Section>,
    current: String,
    first_h1: Option<String>,
}

impl Reader {
    /// Reads the tree under `root` in document order, with an explicit stack (a page may nest
    /// deeper than the call stack allows).
    fn walk(&mut self, root: NodeRef<'_>) {
        let mut stack = vec![Step::Enter {
            node: root,
            preformatted: false,
            in_admonition: false,
        }];
        while let Some(step) = stack.pop() {
            match step {
                Step::Leave { block } => {
                    if block {
                        self.paragraph();
                    }
                }
                Step::Enter {
                    node,
                    preformatted,
                    in_admonition,
                } => match node.value() {
                    Node::Text(text) => self.text(text, preformatted),
                    Node::Element(element) => {
                        if let Some((preformatted, in_admonition, block)) =
                            self.open(node, element, preformatted, in_admonition)
                        {
                            stack.push(Step::Leave { block });
                            stack.extend(node.children().rev().map(|child| Step::Enter {
                                node: child,
                                preformatted,
                                in_admonition,
                            }));
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// Handles an element's start; returns the context of its children, and whether it is a
    /// block, or `None` when its children are not to be read (skipped, or a heading).
    fn open(
        &mut self,
        node: NodeRef<'_>,
        element: &Element,
        preformatted: bool,
        in_admonition: bool,
    ) -> Option<(bool, bool, bool)> {
        let name = element.name();
        if skipped(element) {
            return None;
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
            return None;
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
        Some((preformatted, in_admonition, block))
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

/// Appends the text under `node` in document order, with an explicit stack (see [`Reader::walk`]).
fn collect_text(node: NodeRef<'_>, out: &mut String) {
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        match node.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(element) if !skipped(element) => stack.extend(node.children().rev()),
            _ => {}
        }
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
        let document = read(DOCBOOK_PAGE, "hot-standby").unwrap();
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
        )
        .unwrap();
        assert_eq!(document.title, "Install");
        assert_eq!(document.sections[0].path, "Install");
        let document = read("<p>Only text.</p>", "notes").unwrap();
        assert_eq!(document.title, "notes");
        assert_eq!(document.sections[0].path, "");
    }

    #[test]
    fn malformed_markup_is_read_as_a_browser_would() {
        let document = read("<title>T</title><p>one<p>two <b>bold<i> mixed</b> end", "x").unwrap();
        assert_eq!(document.sections[0].text, "one\n\ntwo bold mixed end");
        assert!(read("<html><nav>menu</nav></html>", "x").unwrap().sections.is_empty());
    }

    #[test]
    fn a_page_nested_too_deep_is_refused_before_parsing() {
        let deep =
            |tag: &str, n: usize| format!("<p>{}x{}", format!("<{tag}>").repeat(n), format!("</{tag}>").repeat(n));
        for tag in ["div", "b", "span"] {
            let started = std::time::Instant::now();
            assert_eq!(
                read(&deep(tag, 100_000), "x"),
                Err(TooDeep { limit: MAX_NESTING }),
                "{tag}"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{tag}: {:?}",
                started.elapsed()
            );
        }
        // At the limit, the page is read; the walk does not recurse.
        let document = read(&deep("div", MAX_NESTING - 5), "x").unwrap();
        assert_eq!(document.sections[0].text, "x");
    }

    #[test]
    fn nesting_is_counted_over_tags_that_need_an_end_tag() {
        assert_eq!(
            nesting_depth("<div><p>a<p>b<li>c<br><img/></div><div><span>x</span></div>", 10),
            2
        );
        assert_eq!(
            nesting_depth("<!-- <div><div> --><SCRIPT>'<div><div><div>'</Script><div>", 10),
            1
        );
        assert_eq!(nesting_depth("<svg><path/><path/><g><path/></g></svg>", 10), 2);
        // In HTML the slash does not close: html5ever nests these.
        assert_eq!(nesting_depth(&"<div/>".repeat(50), 10), 11);
        assert_eq!(nesting_depth(&"<i>".repeat(50), 10), 11);
    }
}
