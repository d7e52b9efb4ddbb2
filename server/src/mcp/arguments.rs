//! The one place a `tools/call`'s arguments become a tool's typed arguments, or an
//! [`ArgumentError`] naming the field and the rule it broke.
//!
//! Every rule on an argument's *shape* — its type, a required field, an unknown one, a numeric
//! range — lives in the argument type, so the JSON schema `tools/list` shows and the check made
//! here are the same declaration ([`Bounded`] carries its range into both). A tool therefore never
//! sees, and never re-checks, an argument its schema refuses; what is left to a tool is meaning
//! (an empty query, a failed SQL statement), answered as its own tool error.
//!
//! Whether an [`ArgumentError`] reaches the client as a JSON-RPC -32602 or a tool result with
//! `isError: true` depends on the revision; the transport decides, with
//! [`super::protocol::Revision::argument_errors_are_tool_results`]:
//! - 2025-11-25 and later: a tool result with `isError: true` (SEP-1303, "Input Validation Errors
//!   as Tool Execution Errors"), so the model reads which field broke which rule and retries;
//! - 2025-06-18, and requests without a version header (2025-03-26): JSON-RPC -32602 with the same
//!   message. That revision's tools page lists "invalid arguments" under protocol errors (and
//!   "invalid input data" under tool execution errors, read here as values a tool refuses for their
//!   meaning, such as an empty query — those stay tool errors in every revision).
//!
//! Either way one argument has one error class per revision: before, `limit: -1` was -32602 and
//! `limit: 0` a tool error (issue #13 §A.6).

use std::{borrow::Cow, fmt};

use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeOwned, Visitor},
};

/// Arguments a tool's schema refuses: the field (a path such as `limit` or `filters[0].name`;
/// `None` when the rule concerns the arguments object itself, e.g. a missing or unknown field,
/// which the rule then names) and the rule, in serde's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", match field { Some(field) => format!("`{field}`: {rule}"), None => rule.clone() })]
pub struct ArgumentError {
    pub field: Option<String>,
    pub rule: String,
}

/// Deserializes `arguments` into the tool's argument type `A`.
pub fn parse<A: DeserializeOwned>(arguments: JsonObject) -> Result<A, ArgumentError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        ArgumentError {
            field: (path != ".").then_some(path),
            rule: error.into_inner().to_string(),
        }
    })
}

/// An integer argument from `MIN` to `MAX` inclusive: the range is in the schema (`minimum`,
/// `maximum`) and refused while deserializing, with the range in the message.
///
/// "Integer" is JSON Schema's: a mathematical integer, whatever its spelling (validation 2020-12
/// §6.1.1, core §4.2.2: "a number with a zero fractional part"), so `5.0` is 5, as a client
/// validating against the schema `tools/list` shows would accept it; `5.5` is not an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded<const MIN: u32, const MAX: u32>(u32);

impl<const MIN: u32, const MAX: u32> Bounded<MIN, MAX> {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Range<const MIN: u32, const MAX: u32>;

        impl<const MIN: u32, const MAX: u32> Visitor<'_> for Range<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                if MAX == u32::MAX {
                    write!(f, "an integer of at least {MIN}")
                } else {
                    write!(f, "an integer from {MIN} to {MAX}")
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                u32::try_from(value)
                    .ok()
                    .filter(|v| (MIN..=MAX).contains(v))
                    .map(Bounded)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                // A fraction (or a non-finite value, which JSON cannot spell but a caller could
                // pass) is not an integer: a type error, as serde words it for any float.
                if !value.is_finite() || value.fract() != 0.0 {
                    return Err(E::invalid_type(de::Unexpected::Float(value), &self));
                }
                if (f64::from(MIN)..=f64::from(MAX)).contains(&value) {
                    // In range of u32 and integral, so the cast is exact.
                    Ok(Bounded(value as u32))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(value), &self))
                }
            }
        }

        deserializer.deserialize_u64(Range::<MIN, MAX>)
    }
}

impl<const MIN: u32, const MAX: u32> JsonSchema for Bounded<MIN, MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Bounded{MIN}to{MAX}").into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": MIN, "maximum": MAX})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        query: String,
        #[serde(default)]
        limit: Option<Bounded<1, 50>>,
    }

    fn refused(arguments: Value) -> String {
        let Value::Object(arguments) = arguments else {
            unreachable!()
        };
        parse::<Args>(arguments).unwrap_err().to_string()
    }

    #[test]
    fn every_refusal_names_the_field_and_the_rule() {
        for (arguments, message) in [
            (json!({}), "missing field `query`"),
            (
                json!({"query": 42}),
                "`query`: invalid type: integer `42`, expected a string",
            ),
            (json!({"query": null}), "`query`: invalid type: null, expected a string"),
            (
                json!({"query": "x", "limit": -1}),
                "`limit`: invalid value: integer `-1`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 0}),
                "`limit`: invalid value: integer `0`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 51}),
                "`limit`: invalid value: integer `51`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 1.5}),
                "`limit`: invalid type: floating point `1.5`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 5.5}),
                "`limit`: invalid type: floating point `5.5`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 0.0}),
                "`limit`: invalid value: floating point `0.0`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 51.0}),
                "`limit`: invalid value: floating point `51.0`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": -5.0}),
                "`limit`: invalid value: floating point `-5.0`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 4294967296.0}),
                "`limit`: invalid value: floating point `4294967296.0`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": "five"}),
                "`limit`: invalid type: string \"five\", expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "limit": 4294967296u64}),
                "`limit`: invalid value: integer `4294967296`, expected an integer from 1 to 50",
            ),
            (
                json!({"query": "x", "extra": 1}),
                "`extra`: unknown field `extra`, expected `query` or `limit`",
            ),
        ] {
            assert_eq!(refused(arguments.clone()), message, "{arguments}");
        }
    }

    #[test]
    fn values_in_range_pass_and_the_schema_carries_the_range() {
        let Value::Object(arguments) = json!({"query": "x", "limit": 50}) else {
            unreachable!()
        };
        assert_eq!(parse::<Args>(arguments).unwrap().limit.map(Bounded::get), Some(50));
        // A number with a zero fractional part is an integer (JSON Schema), at both ends.
        for (limit, expected) in [(json!(5.0), 5), (json!(1.0), 1), (json!(50.0), 50), (json!(1e1), 10)] {
            let Value::Object(arguments) = json!({"query": "x", "limit": limit}) else {
                unreachable!()
            };
            assert_eq!(
                parse::<Args>(arguments).unwrap().limit.map(Bounded::get),
                Some(expected),
                "{limit}"
            );
        }
        let schema = serde_json::to_value(schemars::schema_for!(Bounded<1, 50>)).unwrap();
        assert_eq!(
            (schema["minimum"].clone(), schema["maximum"].clone()),
            (json!(1), json!(50))
        );
    }
}
