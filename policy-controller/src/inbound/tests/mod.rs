//! Tests of the inbound policy API: the mapping by table, and the service over a real socket
//! with tonic's client.
#![allow(clippy::unwrap_used)]

mod mapping;
mod routes;
mod service;
mod source;
