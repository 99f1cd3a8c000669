//! The indexes the controller keeps from its watches: namespaces (for the injection webhook) and,
//! through `weft-policy-index`, inbound policy and, through `weft-endpoints-index`, what meshed
//! proxies resolve outbound; plus the gate that holds readiness until each
//! watch's first full list has been indexed, the wait for a CRD before its watch starts, and the
//! delay between a watch's failed lists.

pub mod crd_check;
pub mod list_backoff;
pub mod namespaces;
pub mod pods;
pub mod sync_gate;

pub use self::{
    namespaces::{
        Annotations, NamespaceFanout, NamespaceIndex, NamespaceMetrics, SharedNamespaces,
    },
    pods::PodFanout,
    sync_gate::SyncGate,
};
