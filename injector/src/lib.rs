//! Weft proxy injection: the pure decision whether a pod gets the proxy, the JSON patch that adds it, the
//! webhook's request/response handling, and the offline manifest processing behind `weft inject` and
//! `weft uninject` (the command itself is the `weft-cli` crate). No I/O happens here.

pub mod admission;
pub mod config;
mod decision;
#[cfg(feature = "fuzz-checks")]
pub mod fuzz_checks;
pub mod manifest;
mod overrides;
mod patch;
mod pod_view;
mod pruned;
mod rejection;
mod rendered;
mod sidecar;
mod status;
pub mod tuning;
pub mod uninject;
mod values;

pub use decision::{
    Decision, Injector, SkipReason, INJECT_ANNOTATION, NO_TRUST_ANCHORS, SYSTEM_NAMESPACES,
};
pub use overrides::{override_keys, OVERRIDE_PREFIX};
pub use patch::{
    CONTROL_PLANE_NS_LABEL, CREATED_BY_ANNOTATION, DEFAULT_CONTAINER_ANNOTATION,
    PROXY_VERSION_ANNOTATION,
};
pub use rejection::{RejectReason, Rejection};
pub use values::InvalidValue;
