//! Tests of the Destination API: the mapping by table, and the service over a real socket with
//! tonic's client. [`fake`] is shared with the outbound policy API's tests.
#![allow(clippy::unwrap_used)]

pub(crate) mod fake;
mod mapping;
pub(crate) mod service;
