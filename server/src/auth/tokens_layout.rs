//! A line reader for tokens.yaml in the layout our CLI writes, so a 100k-token file loads in tens of
//! milliseconds instead of the YAML parser's hundreds.
//!
//! The YAML parser (libyaml underneath) spends about 10 ms per MB on events alone, and a 100k-token
//! file is 11-15 MB; credential rotation must not wait on that. This reader accepts a strict subset
//! of YAML, the one [`TokenEntry::render_file`] writes and hand edits of it commonly keep:
//!
//! ```yaml
//! # comments and blank lines anywhere
//! tokens:
//! - name: api-client              # (no trailing comments: those go to the YAML parser)
//!   hash: sha256:9f86d0…          # or bare hex, plain or quoted
//!   created_at: 2026-05-01T10:11:12.5Z
//!   expires_at: null
//!   tools:
//!   - search_knowledgebase
//! ```
//!
//! Items may be indented (`  - name:`), values may be single- or double-quoted without escapes, and
//! keys come in any order. Everything else — flow collections other than `tools: []`, escapes,
//! anchors, tags, multi-line scalars, tabs, CR, non-ASCII, the pgEdge map layout, an empty list, and
//! any entry the YAML path would refuse — makes [`read`] answer `None`, and the caller reads the file
//! with the YAML parser exactly as before. So this reader never decides an error, and for every file
//! it accepts it yields exactly the entries the YAML path yields (a differential test over varied
//! and mutated files holds it to that).
//!
//! The YAML path deserializes each entry through `serde_yaml::Value`, where a plain scalar is a
//! string only if it is not null, a boolean, an integer or a float. Plain scalars are therefore
//! accepted here only in shapes that cannot be any of those: starting with an ASCII letter and not
//! a null or boolean word (integers and floats start with a digit, a sign or a dot; `inf` and `nan`
//! parse only as non-finite floats, which the YAML path takes as strings); or starting with a digit
//! and containing `:` (timestamps); or all hex digits with one of `acdf` (bare hashes: `b` could
//! make a `0b…` integer and `e` an exponent).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};

/// One entry as read, borrowing from the file or a `TokenEntry`; what the set is built from.
#[derive(Clone, Copy, Debug)]
pub(super) struct EntryRef<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub note: Option<&'a str>,
    pub tools: Option<&'a [String]>,
}

/// Calls `visit` with each entry and its index, in file order, if the whole file is in the layout;
/// `None` as soon as anything is not (the entries visited until then must be discarded).
pub(super) fn read(text: &str, mut visit: impl FnMut(usize, EntryRef<'_>)) -> Option<()> {
    if !printable_ascii(text) {
        return None;
    }
    let mut lines = Lines::new(text);
    let header = lines.next_content()??;
    if header.indent != 0 || header.rest != "tokens:" {
        return None;
    }
    // The first item fixes the items' indentation; an empty list is left to the YAML path.
    let mut line = lines.next_content()??;
    let item_indent = line.indent;
    let mut index = 0;
    loop {
        let first_field = line.rest.strip_prefix("- ")?;
        if line.indent != item_indent {
            return None;
        }
        let (fields, next) = read_entry(&mut lines, item_indent, first_field)?;
        visit(index, fields.entry()?);
        index += 1;
        match next {
            Some(next) => line = next,
            None => return Some(()),
        }
    }
}

/// Reads one entry whose first field is on the item line; returns it with the next content line.
fn read_entry<'a>(
    lines: &mut Lines<'a>,
    item_indent: usize,
    first_field: &'a str,
) -> Option<(Fields<'a>, Option<Line<'a>>)> {
    let key_indent = item_indent + 2;
    let mut fields = Fields::default();
    let mut field = first_field;
    loop {
        let (key, value) = split_field(field)?;
        let mut next = lines.next_content()?;
        if key == "tools" && value.is_empty() {
            // A block sequence: at the keys' indentation (as we write it) or deeper.
            let mut tools = Vec::new();
            let seq_indent = next.as_ref().filter(|l| l.rest.starts_with("- ")).map(|l| l.indent);
            if let Some(seq_indent) = seq_indent.filter(|&i| i >= key_indent) {
                while let Some(value) = next
                    .as_ref()
                    .filter(|l| l.indent == seq_indent)
                    .and_then(|l| l.rest.strip_prefix("- "))
                {
                    let value = value.trim_start_matches(' ');
                    tools.push(string(value)??.to_string());
                    next = lines.next_content()?;
                }
                fields.set(key, FieldValue::Tools(Some(tools)))?;
            } else {
                fields.set(key, FieldValue::Tools(None))?;
            }
        } else {
            fields.set(key, FieldValue::Text(value))?;
        }
        match next {
            Some(line) if line.indent == key_indent => field = line.rest,
            Some(line) if line.indent == item_indent && line.rest.starts_with("- ") => {
                return Some((fields, Some(line)));
            }
            Some(_) => return None,
            None => return Some((fields, None)),
        }
    }
}

/// `key: value` or `key:`; the value without its leading spaces.
fn split_field(field: &str) -> Option<(&str, &str)> {
    let colon = field.bytes().position(|b| b == b':')?;
    let (key, value) = (&field[..colon], &field[colon + 1..]);
    if !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    if value.is_empty() {
        return Some((key, value));
    }
    Some((key, value.strip_prefix(' ')?.trim_start_matches(' ')))
}

enum FieldValue<'a> {
    Text(&'a str),
    Tools(Option<Vec<String>>),
}

/// The fields of one entry as they were written; each key at most once.
#[derive(Default)]
struct Fields<'a> {
    name: Option<&'a str>,
    id: Option<&'a str>,
    hash: Option<&'a str>,
    created_at: Option<&'a str>,
    expires_at: Option<&'a str>,
    note: Option<&'a str>,
    annotation: Option<&'a str>,
    tools: Option<Option<Vec<String>>>,
}

impl<'a> Fields<'a> {
    fn set(&mut self, key: &str, value: FieldValue<'a>) -> Option<()> {
        let slot = match (key, value) {
            ("tools", FieldValue::Tools(tools)) => {
                return self.tools.replace(tools).is_none().then_some(());
            }
            ("tools", FieldValue::Text(text)) => {
                // Only the empty flow list; `tools: [a, b]` goes to the YAML parser.
                let tools = match text {
                    "[]" => Some(Vec::new()),
                    _ => null(text).then_some(None)?,
                };
                return self.tools.replace(tools).is_none().then_some(());
            }
            (_, FieldValue::Tools(_)) => return None,
            ("name", FieldValue::Text(text)) => (&mut self.name, text),
            ("id", FieldValue::Text(text)) => (&mut self.id, text),
            ("hash", FieldValue::Text(text)) => (&mut self.hash, text),
            ("created_at", FieldValue::Text(text)) => (&mut self.created_at, text),
            ("expires_at", FieldValue::Text(text)) => (&mut self.expires_at, text),
            ("note", FieldValue::Text(text)) => (&mut self.note, text),
            ("annotation", FieldValue::Text(text)) => (&mut self.annotation, text),
            // `connections` (pgEdge) and unknown keys: the YAML path accepts or names them.
            _ => return None,
        };
        slot.0.replace(slot.1).is_none().then_some(())
    }

    /// The entry the YAML path makes of these fields, or `None` where it would refuse them.
    fn entry(&self) -> Option<EntryRef<'_>> {
        let text = |field: Option<&'a str>| -> Option<Option<&'a str>> {
            match field {
                None => Some(None),
                Some(value) => string(value),
            }
        };
        let name = text(self.name)?.or(text(self.id)?).filter(|n| !n.trim().is_empty())?;
        let note = text(self.note)?;
        let annotation = text(self.annotation)?;
        Some(EntryRef {
            name,
            hash: string(self.hash?)??,
            created_at: timestamp(self.created_at)?,
            expires_at: timestamp(self.expires_at)?,
            note: note.or(annotation),
            tools: self.tools.as_ref().and_then(|t| t.as_deref()),
        })
    }
}

/// An optional string field: `Some(None)` for null, `Some(Some(text))` for a string, `None` for
/// anything this reader does not decide (a number, a boolean, a quote it cannot read).
fn string(value: &str) -> Option<Option<&str>> {
    let first = match value.as_bytes().first() {
        None => return Some(None),
        Some(&first) => first,
    };
    if null(value) {
        return Some(None);
    }
    let plain_string = match first {
        b'"' | b'\'' => return quoted(value).map(Some),
        b'a'..=b'z' | b'A'..=b'Z' => !boolean(value) && plain_chars(value),
        b'0'..=b'9' => plain_chars(value) && (value.as_bytes().contains(&b':') || bare_hex_is_string(value)),
        _ => false,
    };
    plain_string.then_some(Some(value))
}

/// An optional timestamp field, parsed as chrono's `Deserialize` does (RFC 3339, then UTC).
fn timestamp(value: Option<&str>) -> Option<Option<DateTime<Utc>>> {
    let Some(value) = value else {
        return Some(None);
    };
    match string(value)? {
        None => Some(None),
        Some(text) => match canonical_utc(text) {
            Some(instant) => Some(Some(instant)),
            None => {
                let parsed: DateTime<FixedOffset> = text.parse().ok()?;
                Some(Some(parsed.with_timezone(&Utc)))
            }
        },
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z`, the form chrono writes, read without chrono's general
/// parser (a tenth of the cost; the file holds one or two per token). Anything else — offsets,
/// leap seconds, years before 1000, invalid dates — is `None` and left to chrono, which gives
/// the same instant for every string this accepts (tested).
fn canonical_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[b.len() - 1] == b'Z';
    if !shape {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits
            .iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let year = number(&b[0..4])?;
    let (month, day) = (number(&b[5..7])?, number(&b[8..10])?);
    let (hour, minute, second) = (number(&b[11..13])?, number(&b[14..16])?, number(&b[17..19])?);
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => number(digits)? * 10u32.pow(9 - digits.len() as u32),
        _ => return None,
    };
    if year < 1000 || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// What the YAML path takes as null: an empty value or a null word.
fn null(value: &str) -> bool {
    matches!(value.len(), 0 | 1 | 4) && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// What the YAML path takes as a boolean.
fn boolean(value: &str) -> bool {
    matches!(value.len(), 4 | 5) && matches!(value, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
}

/// The content of `"…"` without escapes or `'…'` without doubled quotes.
fn quoted(value: &str) -> Option<&str> {
    let quote = *value.as_bytes().first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let inner = value.strip_prefix(quote as char)?.strip_suffix(quote as char)?;
    let forbidden = |b: u8| b == quote || (quote == b'"' && b == b'\\');
    (!inner.bytes().any(forbidden)).then_some(inner)
}

/// Digit-first bare hex that is no integer or float: one of `acdf` (any case) rules out decimal,
/// `0x`/`0o`/`0b` prefixes (`x` and `o` are not hex; a `0b…` integer has only 0 and 1 after the
/// prefix) and exponents.
fn bare_hex_is_string(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_hexdigit())
        && value
            .bytes()
            .any(|b| matches!(b.to_ascii_lowercase(), b'a' | b'c' | b'd' | b'f'))
}

/// Characters safe inside a one-line plain scalar: no indicator that could start a comment, a
/// mapping value (`: `), a flow collection, an anchor, a tag or a quote; no doubled or final space.
/// (Folds without early exits: they vectorize, and a hash is 71 characters.)
fn plain_chars(value: &str) -> bool {
    let bytes = value.as_bytes();
    let classes = bytes.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_alphanumeric() | matches!(b, b'-' | b'_' | b'.' | b'/' | b'@' | b'+' | b'=' | b':' | b' '))
    });
    let pairs = || !bytes.windows(2).any(|w| w[1] == b' ' && matches!(w[0], b':' | b' '));
    classes && !bytes.ends_with(b":") && !bytes.ends_with(b" ") && (!bytes.contains(&b' ') || pairs())
}

/// Only printable ASCII and `\n`: no tab, CR, BOM, control or non-ASCII character, each of which
/// has rules of its own in YAML. Checked in blocks without an early exit, so it vectorizes.
fn printable_ascii(text: &str) -> bool {
    text.as_bytes().chunks(256).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & ((0x20..0x7f).contains(&b) | (b == b'\n')))
    })
}

/// A line with content: its indentation (spaces) and the rest.
struct Line<'a> {
    indent: usize,
    rest: &'a str,
}

/// The content lines of the file: blank and comment lines skipped.
struct Lines<'a> {
    remaining: Option<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { remaining: Some(text) }
    }

    /// `Some(Some(line))`, or `Some(None)` at the end of the file; `None` for a line with a
    /// trailing space.
    fn next_content(&mut self) -> Option<Option<Line<'a>>> {
        loop {
            let Some(text) = self.remaining else {
                return Some(None);
            };
            // (A byte search: `str::split_once(char)` calls memcmp for every match.)
            let (line, rest) = match text.bytes().position(|b| b == b'\n') {
                Some(end) => (&text[..end], Some(&text[end + 1..])),
                None => (text, None),
            };
            self.remaining = rest;
            if line.ends_with(' ') {
                return None;
            }
            let rest = line.trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            return Some(Some(Line {
                indent: line.len() - rest.len(),
                rest,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::{TokenEntry, generate_token, line_reader_agrees_with_yaml};

    fn line_reader(text: &str) -> Option<Vec<TokenEntry>> {
        let mut entries = Vec::new();
        read(text, |index, entry| {
            assert_eq!(index, entries.len());
            entries.push(entry.to_entry());
        })?;
        Some(entries)
    }

    /// The reader's one promise: whatever it reads, the YAML path reads the same.
    fn assert_agrees(text: &str) -> bool {
        line_reader_agrees_with_yaml(text)
            .unwrap_or_else(|error| panic!("the two readers disagree on:\n{text}\n{error}"))
    }

    #[test]
    fn files_the_cli_writes_take_the_line_reader() {
        let mut scoped = TokenEntry::new("scoped", &generate_token(), None, Some("CI deploy key".into()));
        scoped.tools = Some(vec!["search_knowledgebase".into()]);
        let mut none = TokenEntry::new("none", &generate_token(), None, None);
        none.tools = Some(Vec::new());
        let entries = vec![
            TokenEntry::new("api-client", &generate_token(), None, None),
            TokenEntry::new(
                "expiring",
                &generate_token(),
                Some("2027-06-30T00:00:00Z".parse().unwrap()),
                None,
            ),
            scoped,
            none,
            TokenEntry::new("quoted", &generate_token(), None, Some("true".into())),
        ];
        let text = TokenEntry::render_file(&entries);
        assert_eq!(line_reader(&text), Some(entries), "{text}");
    }

    #[test]
    fn hand_written_variants_of_the_layout_are_read_alike() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        let bare = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for text in [
            format!("tokens:\n  - name: a\n    hash: \"{hash}\"\n    expires_at: 2027-06-30T00:00:00Z\n"),
            format!("# c\n\ntokens:\n# c\n- id: a\n  # c\n\n  note: x\n  hash: {bare}\n"),
            format!("tokens:\n- hash: '{bare}'\n  name: 'b c'\n  annotation: Production\n  expires_at: ~\n"),
            format!(
                "tokens:\n- name: a\n  hash: {hash}\n  tools:\n    - search_knowledgebase\n    - query_database\n  note: n"
            ),
            format!(
                "tokens:\n    - name: a\n      hash: {hash}\n      tools: []\n      created_at: 2025-01-15 08:30:00+02:00\n"
            ),
        ] {
            assert!(assert_agrees(&text), "not read by the line reader:\n{text}");
        }
    }

    #[test]
    fn other_layouts_go_to_the_yaml_parser() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        for text in [
            String::new(),
            "tokens: []\n".to_string(),
            format!("tokens:\n  prod-api:\n    hash: \"{hash}\"\n"),
            format!("tokens: [{{name: a, hash: \"{hash}\"}}]\n"),
            format!("tokens:\n- name: a # comment\n  hash: {hash}\n"),
            format!("tokens:\n- name: a\n  hash: {hash}\n  connections: [db]\n"),
            format!("tokens:\n- name: \"a\\tb\"\n  hash: {hash}\n"),
            format!("tokens:\n- name: 123\n  hash: {hash}\n"),
            format!("tokens:\n- name: true\n  hash: {hash}\n"),
            format!("tokens:\n- name: a\n    b\n  hash: {hash}\n"),
            format!("tokens:\r\n- name: a\r\n  hash: {hash}\r\n"),
            format!("---\ntokens:\n- name: a\n  hash: {hash}\n"),
            format!("tokens:\n- name: a\n  hash: {hash}\nother: 1\n"),
            format!("tokens:\n- name: a\n  name: b\n  hash: {hash}\n"),
            format!("tokens:\n- name: é\n  hash: {hash}\n"),
            format!("tokens:\n- name: a\n  hash: {}\n", "0".repeat(64)),
        ] {
            assert!(line_reader(&text).is_none(), "read by the line reader:\n{text}");
        }
    }

    /// splitmix64: the test needs repeatable variety, not quality.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// Scalars that YAML reads as strings, as other types, or not at all.
    const SCALARS: &[&str] = &[
        "client-1",
        "api client",
        "Production",
        "a:b",
        "a: b",
        "a :b",
        "a #b",
        "a#b",
        "x  y",
        "-x",
        "x-",
        "true",
        "True",
        "FALSE",
        "yes",
        "on",
        "null",
        "Null",
        "~",
        "",
        "123",
        "0123",
        "0x1F",
        "0o17",
        "0b0101",
        "+1",
        "1e5",
        "E5",
        "e",
        ".inf",
        "-.inf",
        ".NaN",
        "inf",
        "nan",
        "infinity",
        "[]",
        "[a]",
        "{}",
        "&a",
        "*a",
        "!tag x",
        "|",
        ">",
        "@x",
        "%x",
        "a,b",
        "'q'",
        "\"d\"",
        "it's",
        "a\\b",
        "ü",
        "deadbeef",
        "1234",
        "2027-06-30T00:00:00Z",
        "2027-06-30",
        "12:30",
        "search_knowledgebase",
        "query_database",
        "sha256:xyz",
    ];

    /// Scalars the line reader takes as strings, in some quoting or none.
    const READABLE: &[&str] = &[
        "client-1",
        "api client",
        "Production",
        "a:b",
        "a :b",
        "x-",
        "x.y",
        "a/b@c+d=e",
        "deadbeef",
        "12:30",
        "2027-06-30T00:00:00Z",
        "yes",
        "on",
        "inf",
        "nan",
        "infinity",
        "E5",
        "e",
        "sha256:xyz",
        "search_knowledgebase",
    ];

    fn any_scalar<'a>(rng: &mut Rng) -> &'a str {
        if rng.chance(90) {
            rng.pick(READABLE)
        } else {
            rng.pick(SCALARS)
        }
    }

    const TIMESTAMPS: &[&str] = &[
        "2027-06-30T00:00:00Z",
        "2026-05-01T10:11:12.123456789Z",
        "2025-01-15 08:30:00+02:00",
        "2025-01-15T08:30:00-05:30",
        "2027-06-30",
        "2027-13-01T00:00:00Z",
        "12:30",
        "null",
        "~",
        "",
        "1700000000",
    ];

    const TOOLS: &[&str] = &[
        "search_knowledgebase",
        "query_database",
        "explain_query",
        "get_schema_info",
    ];

    fn scalar(rng: &mut Rng, value: &str) -> String {
        match rng.below(6) {
            0 => format!("'{}'", value.replace('\'', "''")),
            1 => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
            _ => value.to_string(),
        }
    }

    fn hash(rng: &mut Rng) -> String {
        let hex: String = (0..64)
            .map(|_| {
                let digits = if rng.chance(3) {
                    "0123456789be"
                } else {
                    "0123456789abcdef"
                };
                digits.as_bytes()[rng.below(digits.len())] as char
            })
            .collect();
        match rng.below(10) {
            0 => any_scalar(rng).to_string(),
            1..=3 => hex,
            _ => format!("sha256:{hex}"),
        }
    }

    fn entry_lines(rng: &mut Rng, item_indent: usize) -> Vec<String> {
        let key_indent = item_indent + 2;
        let mut keys = vec!["hash"];
        for key in [
            "name",
            "id",
            "created_at",
            "expires_at",
            "note",
            "annotation",
            "tools",
            "connections",
        ] {
            let percent = match key {
                "name" => 85,
                "connections" => 3,
                _ => 20,
            };
            if rng.chance(percent) {
                keys.push(key);
            }
        }
        if rng.chance(3) {
            keys.push("name");
        }
        if rng.chance(3) {
            keys.retain(|k| *k != "hash");
        }
        // Shuffle, keeping the usual order most of the time.
        if rng.chance(40) {
            for i in (1..keys.len()).rev() {
                keys.swap(i, rng.below(i + 1));
            }
        }
        let mut lines = Vec::new();
        for key in keys {
            let value = match key {
                "hash" => {
                    let hash = hash(rng);
                    scalar(rng, &hash)
                }
                "name" | "id" if rng.chance(70) => format!("client-{}", rng.below(1000)),
                "created_at" | "expires_at" => {
                    let stamp = rng.pick(TIMESTAMPS);
                    scalar(rng, stamp)
                }
                "connections" => "[db]".to_string(),
                "tools" => match rng.below(5) {
                    0 => "[]".to_string(),
                    1 => rng.pick(&["null", "", "[search_knowledgebase]", "x"]).to_string(),
                    _ => {
                        let seq_indent = key_indent + 2 * rng.below(2);
                        lines.push(format!("{key}:"));
                        for _ in 0..rng.below(3) {
                            let tool = if rng.chance(80) {
                                rng.pick(TOOLS)
                            } else {
                                any_scalar(rng)
                            };
                            let tool = scalar(rng, tool);
                            lines.push(format!("{}{}- {tool}", "\u{0}", " ".repeat(seq_indent)));
                        }
                        continue;
                    }
                },
                _ => {
                    let text = any_scalar(rng);
                    scalar(rng, text)
                }
            };
            lines.push(if value.is_empty() {
                format!("{key}:")
            } else {
                format!("{key}: {value}")
            });
        }
        // The first key goes on the item line; the others at the keys' indentation. (Tool items,
        // marked with a NUL, carry their own indentation.)
        lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| match (i, line.strip_prefix('\u{0}')) {
                (_, Some(item)) => item.to_string(),
                (0, None) => format!("{}- {line}", " ".repeat(item_indent)),
                (_, None) => format!("{}{line}", " ".repeat(key_indent)),
            })
            .collect()
    }

    fn file(rng: &mut Rng) -> String {
        let item_indent = 2 * rng.below(3);
        let mut lines = vec!["# API tokens".to_string(), "tokens:".to_string()];
        for _ in 0..1 + rng.below(4) {
            lines.extend(entry_lines(rng, item_indent));
        }
        // Comments, blank lines and damage here and there.
        let mut out = Vec::new();
        for line in lines {
            if rng.chance(5) {
                out.push(format!("{}# note", " ".repeat(rng.below(6))));
            }
            if rng.chance(5) {
                out.push(String::new());
            }
            let line = match rng.below(400) {
                0 => format!(" {line}"),
                1 => format!("{line} "),
                2 => format!("{line} # trailing"),
                3 => line.replacen(": ", ":", 1),
                4 => line.replacen(' ', "\t", 1),
                5 => line.trim_start().to_string(),
                6 => format!("{line}\r"),
                7 => format!("{line}\n{line}"),
                8 => continue,
                9 => format!("{line}\n  {}", rng.pick(SCALARS)),
                _ => line,
            };
            out.push(line);
        }
        if rng.chance(3) {
            out.push(
                rng.pick(&["other: 1", "...", "---", "- name: x", "tokens: []"])
                    .to_string(),
            );
        }
        let mut text = out.join("\n");
        if rng.chance(80) {
            text.push('\n');
        }
        text
    }

    #[test]
    fn canonical_timestamps_read_as_chrono_reads_them() {
        let mut rng = Rng(7);
        let mut read = 0;
        for _ in 0..20_000 {
            let fraction = match rng.below(4) {
                0 => String::new(),
                _ => format!(".{}", "123456789012".get(..rng.below(12)).unwrap_or_default()),
            };
            let text = format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{fraction}{}",
                rng.pick(&["0999", "1000", "1970", "2024", "2023", "9999"])
                    .parse::<u32>()
                    .unwrap(),
                rng.below(14),
                rng.below(33),
                rng.pick(&["T", "T", "T", "t", " "]),
                rng.below(26),
                rng.below(61),
                rng.below(62),
                rng.pick(&["Z", "Z", "Z", "z", "+00:00", "", "Z "]),
            );
            let chrono = text
                .parse::<DateTime<FixedOffset>>()
                .ok()
                .map(|t| t.with_timezone(&Utc));
            if let Some(instant) = canonical_utc(&text) {
                assert_eq!(Some(instant), chrono, "{text}");
                read += 1;
            }
        }
        assert!(read > 1_000, "{read}");
        assert_eq!(
            canonical_utc("2024-02-29T23:59:59.5Z"),
            "2024-02-29T23:59:59.5Z".parse().ok()
        );
        assert_eq!(canonical_utc("2023-02-29T00:00:00Z"), None);
    }

    #[test]
    fn the_line_reader_agrees_with_the_yaml_parser_on_varied_files() {
        let mut rng = Rng(2026);
        let cases = 20_000;
        let mut read = 0;
        for _ in 0..cases {
            read += usize::from(assert_agrees(&file(&mut rng)));
        }
        eprintln!("line reader: read {read} of {cases} generated files; the YAML parser read the rest");
        // The generator must exercise both sides.
        assert!(read > cases / 4 && read < cases * 3 / 4, "{read} of {cases}");
    }
}
