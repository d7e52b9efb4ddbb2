//! What narrows a search besides its words: products, versions, a source path prefix, and whether
//! a page may answer more than once.
//!
//! The filters are bound into the one prepared search statement as values (JSON arrays read by
//! SQLite's `json_each`, and NULL for "any"), never spliced into SQL text, so every combination
//! runs the same cached statement and nothing in a filter is SQL.

/// Most products or versions one search may name.
pub const MAX_FILTER_VALUES: usize = 32;
/// Longest product, version or source prefix, in bytes.
pub const MAX_FILTER_BYTES: usize = 256;

/// Restrictions on a search; the default restricts nothing and returns one hit per page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Documents of any of these products (case ignored); empty: any product.
    pub products: Vec<String>,
    /// Documents of any of these versions (case ignored); empty: any version.
    pub versions: Vec<String>,
    /// Documents whose source path (relative to its tree, `/`-separated) starts with this.
    pub source_prefix: Option<String>,
    /// Several sections of one page may be returned; by default a page answers once, with its best
    /// section, so the hits a model reads are distinct pages.
    pub all_sections: bool,
}

/// A filter a search refuses, naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{field}` names {count} values; the limit is {MAX_FILTER_VALUES}")]
    TooMany { field: &'static str, count: usize },
    #[error("`{field}` has a value of {bytes} bytes; the limit is {MAX_FILTER_BYTES}")]
    TooLong { field: &'static str, bytes: usize },
}

impl SearchFilter {
    /// Checks the limits ([`MAX_FILTER_VALUES`], [`MAX_FILTER_BYTES`]).
    pub fn check(&self) -> Result<(), FilterError> {
        for (field, values) in [("products", &self.products), ("versions", &self.versions)] {
            if values.len() > MAX_FILTER_VALUES {
                return Err(FilterError::TooMany {
                    field,
                    count: values.len(),
                });
            }
            if let Some(long) = values.iter().find(|v| v.len() > MAX_FILTER_BYTES) {
                return Err(FilterError::TooLong {
                    field,
                    bytes: long.len(),
                });
            }
        }
        match &self.source_prefix {
            Some(prefix) if prefix.len() > MAX_FILTER_BYTES => Err(FilterError::TooLong {
                field: "source_prefix",
                bytes: prefix.len(),
            }),
            _ => Ok(()),
        }
    }

    /// `products` as the statement binds it: a JSON array, or NULL for any.
    pub fn products_json(&self) -> Option<String> {
        json_list(&self.products)
    }

    /// `versions` as the statement binds it: a JSON array, or NULL for any.
    pub fn versions_json(&self) -> Option<String> {
        json_list(&self.versions)
    }

    /// The prefix as bound: NULL when absent or empty.
    pub fn prefix(&self) -> Option<&str> {
        self.source_prefix.as_deref().filter(|p| !p.is_empty())
    }
}

fn json_list(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| serde_json::Value::from(values.to_vec()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_named() {
        assert_eq!(SearchFilter::default().check(), Ok(()));
        let many = SearchFilter {
            products: vec!["p".into(); MAX_FILTER_VALUES + 1],
            ..SearchFilter::default()
        };
        assert_eq!(
            many.check().unwrap_err().to_string(),
            format!("`products` names 33 values; the limit is {MAX_FILTER_VALUES}")
        );
        let long = SearchFilter {
            source_prefix: Some("x".repeat(MAX_FILTER_BYTES + 1)),
            ..SearchFilter::default()
        };
        assert!(matches!(
            long.check(),
            Err(FilterError::TooLong {
                field: "source_prefix",
                ..
            })
        ));
        let filter = SearchFilter {
            versions: vec!["15".into(), "16\"".into()],
            source_prefix: Some(String::new()),
            ..SearchFilter::default()
        };
        assert_eq!(filter.versions_json().as_deref(), Some(r#"["15","16\""]"#));
        assert_eq!((filter.products_json(), filter.prefix()), (None, None));
    }
}
