//! The `weft.dev/inject-status` annotation: a compact JSON record of what injection added, so that uninject
//! removes exactly that and restores any value it replaced.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Key of the status annotation.
pub use weft_core::names::STATUS_ANNOTATION;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjectStatus {
    /// Names of containers added to `spec.containers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Names of containers added to `spec.initContainers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<String>,
    /// Names of volumes added to `spec.volumes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Annotations set, each with the value it replaced (`null`: the key was absent). The status annotation
    /// itself is listed only when it replaced one (such as `weft inject`'s record of the opt-in), which uninject
    /// then puts back; otherwise it is removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
    /// Labels set, each with the value it replaced (`null`: the key was absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
    /// JSON pointers of the objects and arrays injection created because they were absent, in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

impl InjectStatus {
    pub fn to_annotation_value(&self) -> String {
        serde_json::to_string(self)
            .expect("a struct of strings and string maps always serializes to JSON")
    }

    pub fn parse(value: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_compactly() {
        let mut status = InjectStatus {
            containers: vec!["weft-proxy".into()],
            parents: vec!["/metadata/labels".into()],
            ..Default::default()
        };
        status
            .annotations
            .insert("weft.dev/proxy-version".into(), None);
        status.labels.insert("a/b".into(), Some("old".into()));
        let text = status.to_annotation_value();
        assert!(!text.contains(' ') && !text.contains('\n'), "{text}");
        assert!(
            !text.contains("volumes"),
            "empty fields are omitted: {text}"
        );
        assert_eq!(InjectStatus::parse(&text).unwrap(), status);
        assert!(InjectStatus::parse("{\"bogus\":1}").is_err());
    }
}
