//! The `workload` of a `PortSpec`: which pod a proxy asks for.

use serde::Deserialize;

/// The forms a workload may take, for error messages.
pub const ACCEPTED_FORMS: &str =
    r#"expected {"ns":"<namespace>","pod":"<pod>"} or <namespace>:<pod>"#;

/// A pod, as named by a proxy.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(rename = "ns")]
    pub namespace: String,
    pub pod: String,
}

/// A workload string in none of the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid workload {value:?}: {ACCEPTED_FORMS}")]
pub struct InvalidWorkload {
    pub value: String,
}

impl std::str::FromStr for Workload {
    type Err = InvalidWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidWorkload {
            value: s.to_string(),
        };
        let workload = if s.trim_start().starts_with('{') {
            serde_json::from_str::<Workload>(s).map_err(|_| invalid())?
        } else {
            let (namespace, pod) = s.split_once(':').ok_or_else(invalid)?;
            Workload {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            }
        };
        let valid = |name: &str| !name.is_empty() && !name.contains([':', '/']);
        if valid(&workload.namespace) && valid(&workload.pod) {
            Ok(workload)
        } else {
            Err(invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn workload(ns: &str, pod: &str) -> Workload {
        Workload {
            namespace: ns.into(),
            pod: pod.into(),
        }
    }

    #[test]
    fn accepted_forms() {
        for (input, expected) in [
            (
                r#"{"ns":"emojivoto","pod":"web-5d8f"}"#,
                ("emojivoto", "web-5d8f"),
            ),
            (r#" { "pod": "web", "ns": "ns" } "#, ("ns", "web")),
            ("emojivoto:web-5d8f", ("emojivoto", "web-5d8f")),
        ] {
            assert_eq!(
                input.parse::<Workload>().unwrap(),
                workload(expected.0, expected.1),
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_workloads_name_the_accepted_forms() {
        for input in [
            "",
            "web",
            ":web",
            "ns:",
            "ns:web:extra",
            "ns/web",
            "{",
            r#"{"ns":"ns"}"#,
            r#"{"ns":"ns","pod":""}"#,
            r#"{"ns":"ns","external_workload":"vm"}"#,
            r#"{"ns":"ns","pod":"web","extra":1}"#,
            r#"{"ns":1,"pod":"web"}"#,
        ] {
            let error = input.parse::<Workload>().unwrap_err();
            assert_eq!(error.value, input);
            assert!(
                error.to_string().ends_with(ACCEPTED_FORMS),
                "{input}: {error}"
            );
        }
    }
}
