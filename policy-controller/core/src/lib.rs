//! The mesh's vocabulary, written once and used by every Weft crate: how identities are named
//! ([`Mesh`]), the annotation, label, container and volume names ([`names`]) and Linkerd's
//! spellings of the annotations ([`linkerd`]), the default inbound
//! policy ([`DefaultPolicy`]), port lists and the one rule for parsing them ([`PortList`]), and
//! the cluster settings every part shares ([`ClusterSettings`]).
//!
//! No I/O, no Kubernetes client: plain types and pure functions.

pub mod cluster;
pub mod default_policy;
pub mod identity;
pub mod linkerd;
pub mod names;
pub mod ports;

pub use self::{
    cluster::ClusterSettings,
    default_policy::{DefaultPolicy, InvalidDefaultPolicy},
    identity::{Mesh, NameError, ServiceAccountRef},
    ports::{InvalidPortList, PortList, PortRange},
};
