//! Tests of the outbound policy API: the mapping by table, checked against what the proxy
//! requires ([`proxy_checks`]), and the service over a real socket with tonic's client.
#![allow(clippy::unwrap_used)]

mod mapping;
mod proxy_checks;
mod service;
