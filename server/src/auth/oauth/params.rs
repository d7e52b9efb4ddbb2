//! OAuth request parameters: a query string or an `application/x-www-form-urlencoded` body.
//!
//! RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once",
//! and parameters sent without a value are treated as omitted. A repeated parameter is refused
//! rather than resolved first-wins or last-wins: two components disagreeing about which `redirect_uri`
//! a request carried is how open redirects are made.

use std::collections::HashMap;

/// The parameters of one request, each at most once.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
}

/// A parameter repeated, or a required one missing; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

impl Params {
    /// Parses `a=1&b=2` (percent- and `+`-decoded).
    pub fn parse(encoded: &[u8]) -> Result<Params, ParamError> {
        let mut values = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if value.is_empty() {
                continue;
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ParamError(format!(
                    "parameter `{name}` given more than once (RFC 6749 §3.1)"
                )));
            }
        }
        Ok(Params { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, ParamError> {
        self.get(name)
            .ok_or_else(|| ParamError(format!("parameter `{name}` is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_empty_ones_are_omitted() {
        let params = Params::parse(b"a=x%20y&b=&c=1+2").unwrap();
        assert_eq!(params.get("a"), Some("x y"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("1 2"));
        assert!(params.require("b").unwrap_err().0.contains("`b`"));
    }

    #[test]
    fn a_repeated_parameter_is_refused_naming_it() {
        let error = Params::parse(b"redirect_uri=a&redirect_uri=b").unwrap_err();
        assert!(error.0.contains("redirect_uri"), "{error}");
    }
}
