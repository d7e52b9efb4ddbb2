//! A document as every reader hands it to the builder: a title, optional product/version metadata,
//! and its text cut into sections, each with its heading path.
//!
//! The readers ([`super::html`], [`super::markdown`]) differ in how they find headings; everything
//! after that — splitting long sections, indexing, one hit per page — is the same for every format,
//! so it works on this one shape.

/// One document read from a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// Shown with every hit and indexed with the highest weight.
    pub title: String,
    /// From the document itself (Markdown front matter); overrides the source tree's.
    pub product: Option<String>,
    pub version: Option<String>,
    /// In document order; sections without text are left out by the readers.
    pub sections: Vec<Section>,
}

/// A run of text under one heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Headings from the outermost down, joined by ` > ` (empty before the first heading).
    pub path: String,
    pub text: String,
}

/// Joins a heading stack into a section path.
pub fn section_path(headings: &[(usize, String)]) -> String {
    headings.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(" > ")
}

/// `text` with every run of whitespace made one space, trimmed.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A heading or title without the section number documentation generators put before it
/// (DocBook: `27.4.1. User's Overview`, `Chapter 27. High Availability`, `F.2. amcheck`,
/// `Part II. The SQL Language`; Sphinx: `1.2. Install`): the number is not a word anyone searches
/// for, and it would sit in the most heavily weighted columns. A leading token is taken for a
/// number when it ends with `.`, is made of digits, capital letters and dots, and either contains a
/// digit or follows `Chapter`, `Appendix` or `Part`; anything else is left as it is.
pub fn strip_numbering(heading: &str) -> String {
    let heading = collapse_whitespace(heading);
    let mut rest = heading.as_str();
    let mut keyword = false;
    for word in ["Chapter ", "Appendix ", "Part "] {
        if let Some(after) = rest.strip_prefix(word) {
            rest = after;
            keyword = true;
            break;
        }
    }
    let Some((token, after)) = rest.split_once(' ') else {
        return heading;
    };
    let numbering = token.len() > 1
        && token.ends_with('.')
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '.')
        && (keyword || token.chars().any(|c| c.is_ascii_digit()));
    if numbering && !after.trim().is_empty() {
        after.trim().to_string()
    } else {
        heading
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_numbers_are_stripped_and_words_are_not() {
        for (heading, expected) in [
            ("27.4.1. User's Overview", "User's Overview"),
            (
                "Chapter 27. High Availability,\n  Load Balancing",
                "High Availability, Load Balancing",
            ),
            ("F.2. amcheck", "amcheck"),
            ("Part II. The SQL Language", "The SQL Language"),
            ("Appendix F. Additional Modules", "Additional Modules"),
            ("1. Install", "Install"),
            ("I. Reference", "I. Reference"),
            ("SQL. Basics", "SQL. Basics"),
            ("pg_dump", "pg_dump"),
            ("42.", "42."),
            ("Version 2. Changes", "Version 2. Changes"),
        ] {
            assert_eq!(strip_numbering(heading), expected, "{heading:?}");
        }
    }
}
