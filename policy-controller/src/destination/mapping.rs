//! Endpoint sets → `Destination.Get` updates: pure functions, no I/O.
//!
//! A `Get` stream starts with the whole current state and then carries only differences, as the
//! proxy applies them (`proxy/api-resolve/src/resolve.rs`):
//! - `Add` inserts endpoints, or replaces the metadata of an address it already has (so a changed
//!   endpoint, e.g. one whose pod became meshed, is simply added again);
//! - `Remove` drops addresses;
//! - `NoEndpoints { exists: true }` clears the set (the Service exists, with no ready endpoint),
//!   `exists: false` says the Service does not exist (the proxy fails requests to it fast).

use linkerd2_proxy_api::destination::{update, AddrSet, NoEndpoints, Update, WeightedAddrSet};
use std::collections::HashMap;
use weft_endpoints_index::{EndpointSet, ServicePort};

use super::endpoint::{tcp_address, weighted_addr};

/// The first message of a stream: every endpoint, or that there is none.
pub fn initial_update(service: &ServicePort, set: &EndpointSet) -> Update {
    if set.endpoints.is_empty() {
        no_endpoints(set.service_exists)
    } else {
        add(service, set.endpoints.values())
    }
}

/// The messages that take a client from `prev` to `next`; none when nothing it sees changed.
///
/// New and changed endpoints are added before gone ones are removed, so a client never sees an
/// empty set while endpoints are replaced.
pub fn diff_updates(service: &ServicePort, prev: &EndpointSet, next: &EndpointSet) -> Vec<Update> {
    if next.endpoints.is_empty() {
        let was_empty_alike =
            prev.endpoints.is_empty() && prev.service_exists == next.service_exists;
        return if was_empty_alike {
            Vec::new()
        } else {
            vec![no_endpoints(next.service_exists)]
        };
    }
    let mut updates = Vec::with_capacity(2);
    let mut added = next
        .endpoints
        .iter()
        .filter(|(addr, endpoint)| prev.endpoints.get(addr) != Some(endpoint))
        .map(|(_, endpoint)| endpoint)
        .peekable();
    if added.peek().is_some() {
        updates.push(add(service, added));
    }
    let removed: Vec<_> = prev
        .endpoints
        .keys()
        .filter(|addr| !next.endpoints.contains_key(addr))
        .map(|addr| tcp_address(*addr))
        .collect();
    if !removed.is_empty() {
        updates.push(Update {
            update: Some(update::Update::Remove(AddrSet { addrs: removed })),
        });
    }
    updates
}

fn add<'a>(
    service: &ServicePort,
    endpoints: impl Iterator<Item = &'a weft_endpoints_index::Endpoint>,
) -> Update {
    Update {
        update: Some(update::Update::Add(WeightedAddrSet {
            addrs: endpoints.map(weighted_addr).collect(),
            metric_labels: set_labels(service),
        })),
    }
}

fn no_endpoints(exists: bool) -> Update {
    Update {
        update: Some(update::Update::NoEndpoints(NoEndpoints { exists })),
    }
}

/// Labels of every endpoint of the set in the client's metrics.
fn set_labels(service: &ServicePort) -> HashMap<String, String> {
    HashMap::from([
        ("namespace".to_string(), service.namespace.clone()),
        ("service".to_string(), service.name.clone()),
    ])
}
