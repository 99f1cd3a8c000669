//! The policy API proxies call: `GET /v1/inbound/{namespace}/{pod}/{port}` answers the port's
//! inbound policy as JSON; with `?watch=true` it streams newline-delimited JSON, one line per
//! change, until the client disconnects or the pod is deleted. See `POLICY-API.md`.

mod metrics;
mod route;
mod serve;
mod watch_body;

#[cfg(test)]
mod tests;

pub use self::{metrics::ApiMetrics, serve::serve_api};
