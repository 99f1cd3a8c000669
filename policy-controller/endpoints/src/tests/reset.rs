//! Resyncs after a watch restart: the objects named removed go, the listed ones are applied.

use super::*;
use crate::key::ObjKey;

/// What kubert (and the controller's watch driver) passes as removed after a watch restart:
/// the keys the index holds that were not listed again.
fn removed<V, T: kube::ResourceExt>(
    known: &std::collections::HashMap<ObjKey, V>,
    listed: &[T],
) -> kubert::index::NamespacedRemoved {
    let listed: std::collections::HashSet<ObjKey> = listed.iter().map(ObjKey::of).collect();
    let mut removed = kubert::index::NamespacedRemoved::default();
    for key in known.keys().filter(|key| !listed.contains(key)) {
        removed
            .entry(key.namespace.clone())
            .or_default()
            .insert(key.name.clone());
    }
    removed
}

fn reset_services(index: &mut EndpointsIndex, services: Vec<Service>) {
    let removed = removed(&index.state.services, &services);
    IndexNamespacedResource::<Service>::reset(index, services, removed);
}

fn reset_slices(index: &mut EndpointsIndex, slices: Vec<EndpointSlice>) {
    let removed = removed(&index.state.slices, &slices);
    IndexNamespacedResource::<EndpointSlice>::reset(index, slices, removed);
}

fn reset_pods(index: &mut EndpointsIndex, pods: Vec<Pod>) {
    let removed = removed(&index.state.pods, &pods);
    IndexNamespacedResource::<Pod>::reset(index, pods, removed);
}

fn web() -> Service {
    mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)])
}

fn api() -> Service {
    mk_svc("ns", "api", "10.96.0.2", &[("", 80, 80)])
}

fn web_slice() -> EndpointSlice {
    mk_slice(
        "ns",
        "web-a",
        "web",
        &[("", 80)],
        vec![ep("10.0.0.1", None, Some("web-0"))],
    )
}

fn api_slice() -> EndpointSlice {
    mk_slice(
        "ns",
        "api-a",
        "api",
        &[("", 80)],
        vec![ep("10.0.0.2", None, Some("api-0"))],
    )
}

fn web_pod() -> Pod {
    mk_pod("ns", "web-0", "10.0.0.1", "web", true)
}

fn api_pod() -> Pod {
    mk_pod("ns", "api-0", "10.0.0.2", "api", true)
}

fn populated() -> EndpointsIndex {
    let mut index = mk_index();
    reset_services(&mut index, vec![web(), api()]);
    reset_slices(&mut index, vec![web_slice(), api_slice()]);
    reset_pods(&mut index, vec![web_pod(), api_pod()]);
    index
}

#[test]
fn reset_removes_stale_objects() {
    let mut index = populated();
    let mut api_rx = index.service_endpoints(&sp("ns", "api", 80));
    let mut api_ip = index.outbound_target(addr("10.96.0.2:80"));
    let mut api_pod_ip = index.outbound_target(addr("10.0.0.2:80"));
    let web_rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(addrs(&api_rx), ["10.0.0.2:80"]);

    // While disconnected, everything of "api" was deleted.
    reset_services(&mut index, vec![web()]);
    reset_slices(&mut index, vec![web_slice()]);
    reset_pods(&mut index, vec![web_pod()]);
    assert_eq!(**api_rx.borrow_and_update(), EndpointSet::default());
    assert_eq!(*api_ip.borrow_and_update(), OutboundTarget::Unknown);
    assert_eq!(*api_pod_ip.borrow_and_update(), OutboundTarget::Unknown);
    assert!(!web_rx.has_changed().unwrap(), "web is unchanged");
    let metrics = index.metrics();
    assert_eq!(
        (
            metrics.services(),
            metrics.endpoint_slices(),
            metrics.pods()
        ),
        (1, 1, 1)
    );

    // The watches survived the resync: "api" coming back wakes them.
    reset_services(&mut index, vec![web(), api()]);
    reset_slices(&mut index, vec![web_slice(), api_slice()]);
    reset_pods(&mut index, vec![web_pod(), api_pod()]);
    assert!(api_rx.has_changed().unwrap());
    assert_eq!(addrs(&api_rx), ["10.0.0.2:80"]);
    assert!(endpoint(&api_rx, "10.0.0.2:80").identity.is_some());
    assert!(matches!(
        *api_ip.borrow_and_update(),
        OutboundTarget::Service { .. }
    ));
    assert!(matches!(
        *api_pod_ip.borrow_and_update(),
        OutboundTarget::Pod(_)
    ));
}

#[test]
fn an_identical_resync_wakes_nobody() {
    let mut index = populated();
    let endpoints = index.service_endpoints(&sp("ns", "web", 80));
    let service = index.outbound_target(addr("10.96.0.1:80"));
    let pod = index.outbound_target(addr("10.0.0.1:80"));
    reset_services(&mut index, vec![api(), web()]);
    reset_slices(&mut index, vec![api_slice(), web_slice()]);
    reset_pods(&mut index, vec![api_pod(), web_pod()]);
    assert!(!endpoints.has_changed().unwrap());
    assert!(!service.has_changed().unwrap());
    assert!(!pod.has_changed().unwrap());
}

#[test]
fn reset_with_kuberts_removed_keys() {
    // kubert passes the keys it saw vanish; the index removes them.
    let mut index = populated();
    let mut removed = kubert::index::NamespacedRemoved::default();
    removed.insert(
        "ns".to_string(),
        ["api-0".to_string()].into_iter().collect(),
    );
    IndexNamespacedResource::<Pod>::reset(&mut index, vec![web_pod()], removed);
    assert_eq!(index.metrics().pods(), 1);
    let rx = index.service_endpoints(&sp("ns", "api", 80));
    assert_eq!(endpoint(&rx, "10.0.0.2:80").identity, None);
}

#[test]
fn reset_with_only_removed_keys_keeps_what_was_applied_during_the_list() {
    // The controller's watch driver applies each listed object as it arrives and then resets
    // with no objects and the keys that were not listed.
    let mut index = populated();
    let mut removed = kubert::index::NamespacedRemoved::default();
    removed.insert(
        "ns".to_string(),
        ["api-0".to_string()].into_iter().collect(),
    );
    IndexNamespacedResource::<Pod>::apply(&mut index, web_pod());
    IndexNamespacedResource::<Pod>::reset(&mut index, vec![], removed);
    assert_eq!(index.metrics().pods(), 1);
    let web = index.service_endpoints(&sp("ns", "web", 80));
    assert!(endpoint(&web, "10.0.0.1:80").identity.is_some());
    let api = index.service_endpoints(&sp("ns", "api", 80));
    assert_eq!(endpoint(&api, "10.0.0.2:80").identity, None);
}
