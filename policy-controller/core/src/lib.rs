//! The mesh's vocabulary, written once and used by every Weft crate: how identities are named
//! ([`Mesh`]), the annotation, label, container and volume names ([`names`]), the default inbound
//! policy ([`DefaultPolicy`]), port lists and the one rule for parsing them ([`PortList`]).
//!
//! No I/O, no Kubernetes client: plain types and pure functions.

pub mod default_policy;
pub mod identity;
pub mod names;
pub mod ports;

pub use self::{
    default_policy::{DefaultPolicy, InvalidDefaultPolicy},
    identity::{Mesh, NameError, ServiceAccountRef},
    ports::{InvalidPortList, PortList, PortRange},
};
