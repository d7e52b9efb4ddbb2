//! PostgreSQL values as JSON for the model, exactly.
//!
//! Two paths bring values here:
//! - most statements are wrapped so PostgreSQL writes each row as JSON text (`to_json`, which knows
//!   every type); [`json_row_values`] reads that text;
//! - statements that cannot be wrapped (`EXPLAIN`, `SHOW`) are decoded column by column
//!   ([`row_values`]); they return text, JSON or a handful of scalar types, and anything else is
//!   shown as a marker naming its type rather than guessed at.
//!
//! Why not `serde_json::from_str` (issue #17, faults handed on from #13):
//! - **numbers**: serde_json (without `arbitrary_precision`, a crate-wide switch that would change
//!   every other JSON value in the server) reads every number as `i64`, `u64` or `f64`, so
//!   `numeric` values past 15–17 significant digits came out rounded — a balance of
//!   `12345678901234567890.12` became `12345678901234567000`. Here a number whose decimal value an
//!   `f64` (or a 64-bit integer) does not hold exactly is returned as a **string** with PostgreSQL's
//!   digits unchanged ([`number`]); every other number stays a JSON number. The column type
//!   (`numeric`) tells the reader why it is a string.
//! - **depth**: serde_json refuses input nested deeper than 128 levels, and a `json`/`jsonb` value
//!   may nest far deeper, so one such value failed the whole call. Here a column value nested
//!   deeper than [`MAX_VALUE_DEPTH`] comes back as its JSON **text** (a string, lossless), so the
//!   answer stays readable by clients with the same 128-level limit (rmcp, serde_json itself) after
//!   the JSON-RPC envelope adds its own levels. The parser recurses at most that deep, so no input
//!   can exhaust the stack.

use serde_json::{Map, Number, Value};
use tokio_postgres::{
    Row,
    types::{FromSql, Type},
};

/// Deepest nesting of one column value (arrays and objects inside it) returned as JSON; a deeper
/// value is returned as its JSON text. 64 leaves room for the envelope (`result.structuredContent
/// .rows[i][j]` adds 5 levels) under the 128 levels serde_json-based clients accept.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Text PostgreSQL sent that is not the JSON it should be (a bug on one side, never a query's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON from PostgreSQL at byte {offset}: {what}")]
pub struct JsonTextError {
    pub offset: usize,
    pub what: &'static str,
}

/// The values of one row written by PostgreSQL as a JSON object (`to_json(row)`), in column order,
/// duplicate keys kept (`SELECT 1 AS a, 2 AS a` has two columns); numbers and deep values as the
/// module describes.
pub fn json_row_values(text: &str) -> Result<Vec<Value>, JsonTextError> {
    row_members(text, |parser| {
        parser.skip_string()?;
        parser.skip_ws();
        parser.expect(b':', "expected `:` after a key")?;
        parser.column_value()
    })
}

/// The keys of a row object written by PostgreSQL (`to_json(row)`): the column names, in order,
/// unescaped; the values are skipped, however deep.
pub fn json_row_keys(text: &str) -> Result<Vec<String>, JsonTextError> {
    row_members(text, |parser| {
        let key = parser.string()?;
        parser.skip_ws();
        parser.expect(b':', "expected `:` after a key")?;
        parser.skip_value()?;
        Ok(key)
    })
}

/// Walks the members of the row object `text`, in order: `member` reads one (its key, `:` and
/// value) from the parser, standing at its key; what it returns is collected.
fn row_members<T>(
    text: &str,
    mut member: impl FnMut(&mut Parser<'_>) -> Result<T, JsonTextError>,
) -> Result<Vec<T>, JsonTextError> {
    let mut parser = Parser::new(text);
    parser.skip_ws();
    parser.expect(b'{', "expected a JSON object")?;
    let mut members = Vec::new();
    parser.skip_ws();
    if parser.eat(b'}') {
        return parser.end(members);
    }
    loop {
        parser.skip_ws();
        members.push(member(&mut parser)?);
        parser.skip_ws();
        if parser.eat(b',') {
            continue;
        }
        parser.expect(b'}', "expected `,` or `}` in the row object")?;
        return parser.end(members);
    }
}

/// One JSON document (a `json`/`jsonb` value) as a column value: numbers and depth as
/// [`json_row_values`] treats them.
pub fn json_value(text: &str) -> Result<Value, JsonTextError> {
    let mut parser = Parser::new(text);
    let value = parser.column_value()?;
    parser.end(value)
}

/// Every column of `row` as JSON, in column order (the `EXPLAIN`/`SHOW` path).
pub fn row_values(row: &Row) -> Vec<Value> {
    (0..row.len()).map(|index| cell(row, index)).collect()
}

fn cell(row: &Row, index: usize) -> Value {
    let column_type = row.columns()[index].type_();
    fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<Option<T>, ()> {
        row.try_get::<_, Option<T>>(index).map_err(drop)
    }
    let decoded: Result<Option<Value>, ()> = match *column_type {
        Type::BOOL => get::<bool>(row, index).map(|v| v.map(Value::from)),
        Type::INT2 => get::<i16>(row, index).map(|v| v.map(Value::from)),
        Type::INT4 => get::<i32>(row, index).map(|v| v.map(Value::from)),
        Type::INT8 => get::<i64>(row, index).map(|v| v.map(Value::from)),
        Type::OID => get::<u32>(row, index).map(|v| v.map(Value::from)),
        Type::FLOAT4 => get::<f32>(row, index).map(|v| v.map(Value::from)),
        Type::FLOAT8 => get::<f64>(row, index).map(|v| v.map(Value::from)),
        Type::JSON | Type::JSONB => {
            get::<JsonText>(row, index).and_then(|v| v.map(|text| json_value(text.0).map_err(drop)).transpose())
        }
        _ => get::<String>(row, index).map(|v| v.map(Value::from)),
    };
    match decoded {
        Ok(Some(value)) => value,
        Ok(None) => Value::Null,
        Err(()) => Value::String(format!("<{} value not shown>", column_type.name())),
    }
}

/// A `json` or `jsonb` value's text as sent in the binary format (`jsonb` prefixes format
/// version 1), read without parsing it.
struct JsonText<'a>(&'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let raw = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("unsupported jsonb format version".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

/// A JSON number literal as written by PostgreSQL: a JSON number when an `i64`, `u64` or `f64`
/// holds its decimal value exactly (so it prints back as the same value: `12.50` → `12.5`), else a
/// string with the literal's digits (`12345678901234567890.12`, `1e400`).
pub fn number(literal: &str) -> Value {
    let integral = !literal.contains(['.', 'e', 'E']);
    if integral {
        if let Ok(n) = literal.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(n) = literal.parse::<u64>() {
            return Value::from(n);
        }
    }
    // Up to 15 significant digits without an exponent, an f64 always holds the value (DBL_DIG):
    // the common case, decided without printing the float back.
    let significant = literal
        .bytes()
        .skip_while(|b| matches!(b, b'-' | b'0' | b'.'))
        .filter(u8::is_ascii_digit)
        .count();
    if !integral
        && significant <= 15
        && !literal.contains(['e', 'E'])
        && let Some(n) = literal.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    if let Ok(float) = literal.parse::<f64>()
        && float.is_finite()
        && decimal(literal).is_some_and(|exact| Some(exact) == decimal(&float.to_string()))
        && let Some(n) = Number::from_f64(float)
    {
        return Value::Number(n);
    }
    Value::String(literal.to_string())
}

/// A decimal literal's value in a canonical form: sign, significant digits (no leading or trailing
/// zeros) and the power of ten of the last digit; zero is `(false, "", 0)`.
fn decimal(literal: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal.strip_prefix('+').unwrap_or(literal)),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut power = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    power = power.checked_add(i64::try_from(significant.len() - trimmed.len()).ok()?)?;
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, trimmed.to_string(), power))
}

/// A recursive-descent reader over PostgreSQL's JSON text, depth-bounded.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

/// A value past [`MAX_VALUE_DEPTH`]: unwinds to the column value, which is then taken as text.
enum Step {
    TooDeep,
    Invalid(JsonTextError),
}

impl From<JsonTextError> for Step {
    fn from(error: JsonTextError) -> Step {
        Step::Invalid(error)
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn error(&self, what: &'static str) -> JsonTextError {
        JsonTextError { offset: self.at, what }
    }

    fn skip_ws(&mut self) {
        while self.bytes().get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes().get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), JsonTextError> {
        if self.eat(byte) { Ok(()) } else { Err(self.error(what)) }
    }

    fn end<T>(&mut self, value: T) -> Result<T, JsonTextError> {
        self.skip_ws();
        if self.at == self.text.len() {
            Ok(value)
        } else {
            Err(self.error("unexpected text after the value"))
        }
    }

    /// One column value: parsed, or its text when nested past [`MAX_VALUE_DEPTH`].
    fn column_value(&mut self) -> Result<Value, JsonTextError> {
        self.skip_ws();
        let start = self.at;
        match self.value(1) {
            Ok(value) => Ok(value),
            Err(Step::Invalid(error)) => Err(error),
            Err(Step::TooDeep) => {
                self.at = start;
                self.skip_value()?;
                Ok(Value::String(self.text[start..self.at].to_string()))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Step> {
        self.skip_ws();
        match self.bytes().get(self.at) {
            Some(b'{') | Some(b'[') if depth > MAX_VALUE_DEPTH => Err(Step::TooDeep),
            Some(b'{') => {
                self.at += 1;
                let mut map = Map::new();
                self.skip_ws();
                if self.eat(b'}') {
                    return Ok(Value::Object(map));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    self.expect(b':', "expected `:` after a key")?;
                    let value = self.value(depth + 1)?;
                    map.insert(key, value);
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(b'}', "expected `,` or `}` in an object")?;
                    return Ok(Value::Object(map));
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(b']', "expected `,` or `]` in an array")?;
                    return Ok(Value::Array(items));
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while self
                    .bytes()
                    .get(self.at)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    self.at += 1;
                }
                let literal = &self.text[start..self.at];
                if decimal(literal).is_none() {
                    self.at = start;
                    return Err(self.error("invalid number").into());
                }
                Ok(number(literal))
            }
            _ => Err(self.error("expected a JSON value").into()),
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, Step> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal").into())
        }
    }

    /// Moves the cursor past the string starting at it (a `"`): where it started, and whether it
    /// has escapes. Keys of a row object are only skipped this way (the column order is known).
    fn skip_string(&mut self) -> Result<(usize, bool), JsonTextError> {
        let start = self.at;
        self.expect(b'"', "expected a string")?;
        let mut escaped = false;
        loop {
            match self.bytes().get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.at += 2;
                }
                Some(_) => self.at += 1,
            }
        }
        self.at += 1;
        Ok((start, escaped))
    }

    /// The string starting at the cursor (a `"`), unescaped; the cursor ends past its closing quote.
    fn string(&mut self) -> Result<String, JsonTextError> {
        let (start, escaped) = self.skip_string()?;
        if !escaped {
            return Ok(self.text[start + 1..self.at - 1].to_string());
        }
        // Escapes (`\n`, `\u00e9`, surrogate pairs) are serde_json's to decode: a flat string is
        // never deep.
        serde_json::from_str(&self.text[start..self.at]).map_err(|_| JsonTextError {
            offset: start,
            what: "invalid string escape",
        })
    }

    /// Moves the cursor past one value without building it, however deep (a counter, no recursion);
    /// a number, `true`, `false` or `null` ends at the next separator.
    fn skip_value(&mut self) -> Result<(), JsonTextError> {
        let mut depth = 0usize;
        loop {
            self.skip_ws();
            match self.bytes().get(self.at) {
                None => return Err(self.error("unterminated value")),
                Some(b) if depth == 0 && !matches!(b, b'{' | b'[' | b'"' | b'}' | b']') => {
                    while self
                        .bytes()
                        .get(self.at)
                        .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                    {
                        self.at += 1;
                    }
                    return Ok(());
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    self.at += 1;
                }
                Some(b'}' | b']') => {
                    depth = depth.checked_sub(1).ok_or_else(|| self.error("unbalanced brackets"))?;
                    self.at += 1;
                }
                Some(b'"') => {
                    self.skip_string()?;
                }
                Some(_) => self.at += 1,
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_an_f64_holds_stay_numbers_and_others_keep_their_digits() {
        for (literal, expected) in [
            ("0", json!(0)),
            ("-7", json!(-7)),
            ("12.50", json!(12.5)),
            ("99999.99", json!(99999.99)),
            ("0.1", json!(0.1)),
            ("1e3", json!(1000.0)),
            ("9223372036854775807", json!(i64::MAX)),
            ("18446744073709551615", json!(u64::MAX)),
            ("18446744073709551616", json!("18446744073709551616")),
            ("12345678901234567890.12", json!("12345678901234567890.12")),
            ("0.30000000000000001", json!("0.30000000000000001")),
            (
                "3.141592653589793238462643383279",
                json!("3.141592653589793238462643383279"),
            ),
            (
                "-123456789012345678901234567890",
                json!("-123456789012345678901234567890"),
            ),
            ("1e400", json!("1e400")),
        ] {
            assert_eq!(number(literal), expected, "{literal}");
        }
    }

    #[test]
    fn a_row_keeps_column_order_duplicates_and_exact_numerics() {
        let values = json_row_values(
            r#"{"b":1,"a":"x\u00e9\"","a":null,"n":12345678901234567890.123456789,"j":{"k": [1, 2.5]}}"#,
        )
        .unwrap();
        assert_eq!(
            values,
            vec![
                json!(1),
                json!("xé\""),
                Value::Null,
                json!("12345678901234567890.123456789"),
                json!({"k": [1, 2.5]})
            ]
        );
        assert_eq!(json_row_values("{}").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn a_row_s_keys_come_back_in_order_unescaped_past_deep_values() {
        let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        let text = format!(r#"{{"id": 12.5, "a \"b\"": {deep}, "\u00e9t\u00e9": "x}}", "id": null,"z":true}}"#);
        assert_eq!(json_row_keys(&text).unwrap(), ["id", "a \"b\"", "été", "id", "z"]);
        assert_eq!(json_row_keys("{}").unwrap(), Vec::<String>::new());
        assert!(json_row_keys("[1]").is_err());
    }

    #[test]
    fn a_value_nested_past_the_limit_comes_back_as_its_text_and_the_row_survives() {
        let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        let at_limit = format!("{}\"x\"{}", "[".repeat(MAX_VALUE_DEPTH), "]".repeat(MAX_VALUE_DEPTH));
        let text = format!(r#"{{"id": 1, "deep": {deep}, "ok": {at_limit}, "s": "a]}}"}}"#);
        let values = json_row_values(&text).unwrap();
        assert_eq!(values[0], json!(1));
        assert_eq!(values[1], Value::String(deep.clone()));
        assert!(values[2].is_array(), "a value at the limit stays JSON");
        assert_eq!(values[3], json!("a]}"));
        // The answer nests within what serde_json reads back, envelope included.
        let envelope = json!({"result": {"structuredContent": {"rows": [values]}}}).to_string();
        assert!(serde_json::from_str::<Value>(&envelope).is_ok());
        assert_eq!(json_value(&deep).unwrap(), Value::String(deep));
    }

    #[test]
    fn text_that_is_not_json_is_an_error_naming_where() {
        for bad in [
            "",
            "[1]",
            "{\"a\" 1}",
            "{\"a\":1",
            "{\"a\":tru}",
            "{\"a\":1} x",
            "{\"a\":--1}",
        ] {
            assert!(json_row_values(bad).is_err(), "{bad:?}");
        }
        assert_eq!(json_row_values("{\"a\":[1,}").unwrap_err().offset, 8);
    }
}
