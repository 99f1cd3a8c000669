//! Pods behind endpoints: identity, service account, and the order in which objects arrive.

use super::*;

fn web_index() -> EndpointsIndex {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("http", 80, 8080)]),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("http", 8080)],
            vec![
                ep("10.0.0.1", None, Some("web-0")),
                ep("10.0.0.2", None, Some("web-1")),
            ],
        ),
    );
    index
}

#[test]
fn meshed_pods_have_an_identity() {
    let mut index = web_index();
    apply_pod(
        &mut index,
        mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "web-1", "10.0.0.2", "web-sa", false),
    );
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(
        endpoint(&rx, "10.0.0.1:8080"),
        Endpoint {
            addr: addr("10.0.0.1:8080"),
            namespace: "ns".to_string(),
            pod: Some("web-0".to_string()),
            service_account: Some("web-sa".to_string()),
            identity: Some("web-sa.ns.serviceaccount.identity.weft.cluster.local".to_string()),
            opaque: false,
            zone: Some("zone-a".to_string()),
        }
    );
    let unmeshed = endpoint(&rx, "10.0.0.2:8080");
    assert_eq!(unmeshed.identity, None);
    assert_eq!(unmeshed.service_account.as_deref(), Some("web-sa"));
}

#[test]
fn meshed_means_a_proxy_container_or_init_container() {
    type Edit = fn(&mut PodSpec);
    let cases: [(&str, Edit, bool); 4] = [
        ("proxy container", |_| {}, true),
        (
            "no proxy",
            |spec| spec.containers.retain(|c| c.name == "app"),
            false,
        ),
        (
            "proxy as a native sidecar (init container)",
            |spec| {
                let proxy = spec.containers.pop().unwrap();
                spec.init_containers = Some(vec![proxy]);
            },
            true,
        ),
        (
            "a container merely named like the proxy's prefix",
            |spec| spec.containers[1].name = format!("{PROXY_CONTAINER_NAME}-init"),
            false,
        ),
    ];
    for (what, edit, meshed) in cases {
        let mut index = web_index();
        let mut pod = mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true);
        edit(pod.spec.as_mut().unwrap());
        apply_pod(&mut index, pod);
        let rx = index.service_endpoints(&sp("ns", "web", 80));
        assert_eq!(
            endpoint(&rx, "10.0.0.1:8080").identity.is_some(),
            meshed,
            "{what}"
        );
    }
}

#[test]
fn the_default_service_account_applies_when_unset() {
    let mut index = web_index();
    let mut pod = mk_pod("ns", "web-0", "10.0.0.1", "", true);
    pod.spec.as_mut().unwrap().service_account_name = None;
    apply_pod(&mut index, pod);
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(
        endpoint(&rx, "10.0.0.1:8080").identity.as_deref(),
        Some("default.ns.serviceaccount.identity.weft.cluster.local")
    );
}

#[test]
fn a_pod_arriving_after_its_slice_updates_the_set() {
    let mut index = web_index();
    let mut rx = index.service_endpoints(&sp("ns", "web", 80));
    let before = endpoint(&rx, "10.0.0.1:8080");
    assert_eq!(before.pod.as_deref(), Some("web-0"));
    assert_eq!(before.service_account, None);
    assert_eq!(before.identity, None);

    apply_pod(
        &mut index,
        mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true),
    );
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    assert!(endpoint(&rx, "10.0.0.1:8080").identity.is_some());
    assert_eq!(endpoint(&rx, "10.0.0.2:8080").identity, None);

    // A status-only update changes nothing the index keeps: no wake-up.
    let mut pod = mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true);
    pod.status.as_mut().unwrap().message = Some("still running".to_string());
    apply_pod(&mut index, pod);
    assert!(!rx.has_changed().unwrap());

    // The pod going away leaves the slice's endpoint, without identity.
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "web-0".into());
    assert!(rx.has_changed().unwrap());
    assert_eq!(endpoint(&rx, "10.0.0.1:8080").identity, None);
}

#[test]
fn pods_of_other_services_do_not_wake_watchers() {
    let mut index = web_index();
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    apply_pod(&mut index, mk_pod("ns", "api-0", "10.0.0.9", "api", true));
    apply_pod(
        &mut index,
        mk_pod("other", "web-0", "10.1.0.1", "web-sa", true),
    );
    assert!(!rx.has_changed().unwrap());
}
