//! Weft proxy injection: the pure decision whether a pod gets the proxy, the JSON patch that adds it, the
//! webhook's request/response handling, and the offline manifest processing behind the `weft` CLI.
//! No I/O happens here, except in `check::fetch`, which reads an installation from the API server
//! for `weft check` (the checks themselves are pure, in `check`), `grpc_client`, which connects to
//! the controller's gRPC API, and `policy_cli::client` and `endpoints_cli::client`, which call it
//! for `weft policy` and `weft endpoints` (the rendering is pure).

pub mod admission;
pub mod check;
pub mod cli;
pub mod config;
mod decision;
pub mod endpoints_cli;
pub mod grpc_client;
pub mod manifest;
mod overrides;
mod patch;
mod pod_view;
pub mod policy_cli;
mod pruned;
mod rejection;
mod rendered;
pub mod sidecar;
pub mod status;
pub mod uninject;
pub mod values;

pub use decision::{
    Decision, Injector, SkipReason, INJECT_ANNOTATION, NO_TRUST_ANCHORS, SYSTEM_NAMESPACES,
};
pub use overrides::{override_keys, OVERRIDE_PREFIX};
pub use patch::{
    CONTROL_PLANE_NS_LABEL, CREATED_BY_ANNOTATION, DEFAULT_CONTAINER_ANNOTATION,
    PROXY_VERSION_ANNOTATION,
};
pub use rejection::{RejectReason, Rejection};
