//! Label selectors (`matchLabels` / `matchExpressions`) with matching and validation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::FieldError;

/// Selects objects by their labels. An empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// Builds a selector from `matchLabels` only.
    pub fn from_labels<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            match_labels: Some(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            match_expressions: None,
        }
    }

    /// Whether an object with `labels` is selected. Assumes a validated selector; an `In`/`NotIn`
    /// without values is treated as an empty set.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels_match = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        labels_match
            && self
                .match_expressions
                .iter()
                .flatten()
                .all(|expr| expr.matches(labels))
    }

    /// Checks the selector's structure; `field` is where it sits in the object, e.g.
    /// `spec.podSelector`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        for (key, value) in self.match_labels.iter().flatten() {
            let at = format!("{field}.matchLabels");
            check_label_key(key)
                .map_err(|why| FieldError::new(&at, format!("key {key:?} {why}")))?;
            check_label_value(value).map_err(|why| {
                FieldError::new(format!("{at}.{key}"), format!("value {value:?} {why}"))
            })?;
        }
        for (i, expr) in self.match_expressions.iter().flatten().enumerate() {
            expr.validate(&format!("{field}.matchExpressions[{i}]"))?;
        }
        Ok(())
    }
}

impl LabelSelectorRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let values = self.values.as_deref().unwrap_or_default();
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }

    fn validate(&self, field: &str) -> Result<(), FieldError> {
        check_label_key(&self.key).map_err(|why| {
            FieldError::new(format!("{field}.key"), format!("{:?} {why}", self.key))
        })?;
        let values = self.values.as_deref().unwrap_or_default();
        match self.operator {
            SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => {
                Err(FieldError::new(
                    format!("{field}.values"),
                    format!("operator {:?} needs at least one value", self.operator),
                ))
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if self.values.is_some() => {
                Err(FieldError::new(
                    format!("{field}.values"),
                    format!("operator {:?} must not have values", self.operator),
                ))
            }
            _ => {
                for (i, value) in values.iter().enumerate() {
                    check_label_value(value).map_err(|why| {
                        FieldError::new(format!("{field}.values[{i}]"), format!("{value:?} {why}"))
                    })?;
                }
                Ok(())
            }
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
fn check_label_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(is_dns_label) {
                return Err("has an invalid prefix (expected a DNS subdomain before '/')");
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("is not a label key (the name part is empty)");
    }
    check_label_value(name).map_err(|_| {
        "is not a label key (at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)"
    })
}

/// A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and ending with
/// an alphanumeric.
fn check_label_value(value: &str) -> Result<(), &'static str> {
    const WHY: &str =
        "is not a label value (at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)";
    if value.is_empty() {
        return Ok(());
    }
    let bytes = value.as_bytes();
    let edges_ok =
        bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    let chars_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if value.len() <= 63 && edges_ok && chars_ok {
        Ok(())
    } else {
        Err(WHY)
    }
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = selector(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
            ],
        }));
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "edge"), ("zone", "b")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "back")])));
        assert!(!sel.matches(&labels(&[("app", "api"), ("tier", "front")])));
        assert!(!sel.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("canary", "1")
        ])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a")])));
        let exists = selector(json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}));
        assert!(exists.matches(&labels(&[("app", "x")])));
        assert!(!exists.matches(&labels(&[])));
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "spec.podSelector.matchExpressions[0].values: operator In needs at least one value",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                "spec.podSelector.matchExpressions[0].values: operator In needs at least one value",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "spec.podSelector.matchExpressions[1].values: operator Exists must not have values",
            ),
            (
                json!({"matchLabels": {"app": "not valid"}}),
                "spec.podSelector.matchLabels.app: value \"not valid\" is not a label value (at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)",
            ),
        ];
        for (value, expected) in cases {
            let err = selector(value).validate("spec.podSelector").unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
        selector(json!({"matchLabels": {"example.com/app": "web", "empty": ""}}))
            .validate("spec.podSelector")
            .unwrap();
    }
}
