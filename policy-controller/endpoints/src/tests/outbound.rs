//! Outbound targets: what an `ip:port` is.

use super::*;

fn svc_target(ns: &str, name: &str, port: u16, opaque: bool) -> OutboundTarget {
    OutboundTarget::Service {
        service: sp(ns, name, port),
        opaque,
    }
}

fn pod_target(at: &str, pod: &str, sa: &str, meshed: bool) -> OutboundTarget {
    OutboundTarget::Pod(Endpoint {
        addr: addr(at),
        namespace: "ns".to_string(),
        pod: Some(pod.to_string()),
        service_account: Some(sa.to_string()),
        identity: meshed.then(|| format!("{sa}.ns.serviceaccount.identity.weft.cluster.local")),
        opaque: false,
        zone: None,
    })
}

#[test]
fn outbound_targets() {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("http", 80, 8080)]),
    );
    let mut dual = mk_svc("ns", "dual", "10.96.0.2", &[("", 443, 8443)]);
    dual.spec.as_mut().unwrap().cluster_ips =
        Some(vec!["10.96.0.2".to_string(), "fd00::2".to_string()]);
    apply_svc(&mut index, dual);
    apply_svc(
        &mut index,
        mk_svc("ns", "headless", "None", &[("", 80, 80)]),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "legacy-0", "10.0.0.2", "legacy", false),
    );
    let mut host = mk_pod("ns", "node-agent", "192.168.1.10", "agent", true);
    host.spec.as_mut().unwrap().host_network = Some(true);
    apply_pod(&mut index, host);
    let mut done = mk_pod("ns", "job-0", "10.0.0.3", "job", true);
    done.status.as_mut().unwrap().phase = Some("Succeeded".to_string());
    apply_pod(&mut index, done);

    let cases = [
        ("10.96.0.1:80", svc_target("ns", "web", 80, false)),
        ("10.96.0.1:8080", OutboundTarget::Unknown),
        ("10.96.0.2:443", svc_target("ns", "dual", 443, false)),
        ("[fd00::2]:443", svc_target("ns", "dual", 443, false)),
        (
            "10.0.0.1:8080",
            pod_target("10.0.0.1:8080", "web-0", "web-sa", true),
        ),
        (
            "10.0.0.1:9999",
            pod_target("10.0.0.1:9999", "web-0", "web-sa", true),
        ),
        (
            "10.0.0.2:80",
            pod_target("10.0.0.2:80", "legacy-0", "legacy", false),
        ),
        ("192.168.1.10:80", OutboundTarget::Unknown),
        ("10.0.0.3:80", OutboundTarget::Unknown),
        ("10.9.9.9:80", OutboundTarget::Unknown),
    ];
    for (at, expected) in cases {
        assert_eq!(*index.outbound_target(addr(at)).borrow(), expected, "{at}");
    }
}

#[test]
fn outbound_targets_follow_services_and_pods() {
    let mut index = mk_index();
    let mut svc_rx = index.outbound_target(addr("10.96.0.1:80"));
    let mut pod_rx = index.outbound_target(addr("10.0.0.1:80"));
    let other_rx = index.outbound_target(addr("10.0.0.2:80"));
    assert_eq!(*svc_rx.borrow(), OutboundTarget::Unknown);

    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    assert!(svc_rx.has_changed().unwrap());
    assert_eq!(
        *svc_rx.borrow_and_update(),
        svc_target("ns", "web", 80, false)
    );

    apply_pod(
        &mut index,
        mk_pod("ns", "web-0", "10.0.0.1", "web-sa", false),
    );
    assert_eq!(
        *pod_rx.borrow_and_update(),
        pod_target("10.0.0.1:80", "web-0", "web-sa", false)
    );
    // The pod gets meshed (recreated with the proxy under the same name).
    apply_pod(
        &mut index,
        mk_pod("ns", "web-0", "10.0.0.1", "web-sa", true),
    );
    assert!(pod_rx.has_changed().unwrap());
    assert_eq!(
        *pod_rx.borrow_and_update(),
        pod_target("10.0.0.1:80", "web-0", "web-sa", true)
    );

    // Only watches at affected IPs wake up.
    assert!(!other_rx.has_changed().unwrap());
    assert!(!svc_rx.has_changed().unwrap());

    IndexNamespacedResource::<Service>::delete(&mut index, "ns".into(), "web".into());
    assert_eq!(*svc_rx.borrow_and_update(), OutboundTarget::Unknown);
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "web-0".into());
    assert_eq!(*pod_rx.borrow_and_update(), OutboundTarget::Unknown);
    assert!(!other_rx.has_changed().unwrap());
}

#[test]
fn a_reused_pod_ip_belongs_to_the_newer_pod() {
    let mut index = mk_index();
    let mut rx = index.outbound_target(addr("10.0.0.1:80"));
    apply_pod(&mut index, mk_pod("ns", "old", "10.0.0.1", "old-sa", true));
    // The newer pod gets the IP before the old pod's deletion is observed.
    apply_pod(&mut index, mk_pod("ns", "new", "10.0.0.1", "new-sa", true));
    assert_eq!(
        *rx.borrow_and_update(),
        pod_target("10.0.0.1:80", "new", "new-sa", true)
    );

    // A status update of the old pod does not take the IP back; its deletion does not drop it.
    let mut old = mk_pod("ns", "old", "10.0.0.1", "old-sa", true);
    old.status.as_mut().unwrap().message = Some("terminating".to_string());
    apply_pod(&mut index, old);
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "old".into());
    assert_eq!(
        *rx.borrow_and_update(),
        pod_target("10.0.0.1:80", "new", "new-sa", true)
    );

    // Terminated pods let go of their IP: the older claimant owns it again.
    apply_pod(&mut index, mk_pod("ns", "old", "10.0.0.1", "old-sa", true));
    apply_pod(&mut index, mk_pod("ns", "new", "10.0.0.1", "new-sa", true));
    let mut new = mk_pod("ns", "new", "10.0.0.1", "new-sa", true);
    new.status.as_mut().unwrap().phase = Some("Failed".to_string());
    apply_pod(&mut index, new);
    assert_eq!(
        *rx.borrow_and_update(),
        pod_target("10.0.0.1:80", "old", "old-sa", true)
    );
}
