//! Why a pod must not be admitted as it is: the [`Rejection`] every check returns, and its [`RejectReason`].
//! A leaf module, so the checks (decision, overrides, patch) import it without importing each other.

/// A pod that must not be admitted as it is; `message` names the annotation or port and the accepted form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

/// Why a pod is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A `weft.dev/inject` or `config.weft.dev/` annotation has an invalid value.
    InvalidAnnotation,
    /// An app container declares one of the proxy's ports.
    PortConflict,
}

impl RejectReason {
    /// A snake_case name, used as a metrics label.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::InvalidAnnotation => "invalid_annotation",
            RejectReason::PortConflict => "port_conflict",
        }
    }
}

impl Rejection {
    /// An annotation `key` whose value is not a string (possible in hand-written YAML: `key: true`).
    pub(crate) fn not_a_string(key: &str) -> Self {
        Self {
            reason: RejectReason::InvalidAnnotation,
            message: format!(
                "{key}: the annotation value must be a string (quote it in YAML, e.g. \"true\")"
            ),
        }
    }
}
