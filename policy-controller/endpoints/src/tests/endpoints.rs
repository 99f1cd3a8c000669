//! Endpoint sets: Services × EndpointSlices.

use super::*;

#[test]
fn endpoints_merge_across_slices() {
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
            vec![ep("10.0.0.1", None, None)],
        ),
    );
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    assert!(rx.borrow().service_exists);
    assert_eq!(addrs(&rx), ["10.0.0.1:8080"]);

    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-b",
            "web",
            &[("http", 8080)],
            vec![ep("10.0.0.2", Some(true), None), ep("10.0.0.3", None, None)],
        ),
    );
    assert_eq!(
        addrs(&rx),
        ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"]
    );

    IndexNamespacedResource::<EndpointSlice>::delete(&mut index, "ns".into(), "web-a".into());
    assert_eq!(addrs(&rx), ["10.0.0.2:8080", "10.0.0.3:8080"]);
    // A slice of another Service, or of the same name in another namespace, is not merged.
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "api-a",
            "api",
            &[("http", 8080)],
            vec![ep("10.0.0.9", None, None)],
        ),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "other",
            "web-a",
            "web",
            &[("http", 8080)],
            vec![ep("10.0.0.8", None, None)],
        ),
    );
    assert_eq!(addrs(&rx), ["10.0.0.2:8080", "10.0.0.3:8080"]);
}

#[test]
fn service_ports_map_to_slice_ports_by_name() {
    struct Case {
        what: &'static str,
        svc_ports: &'static [(&'static str, i32, i32)],
        slice_ports: &'static [(&'static str, i32)],
        port: u16,
        exists: bool,
        expected: &'static [&'static str],
    }
    let cases = [
        Case {
            what: "unnamed port, same target port",
            svc_ports: &[("", 80, 80)],
            slice_ports: &[("", 80)],
            port: 80,
            exists: true,
            expected: &["10.0.0.1:80"],
        },
        Case {
            what: "unnamed port, other target port",
            svc_ports: &[("", 80, 8080)],
            slice_ports: &[("", 8080)],
            port: 80,
            exists: true,
            expected: &["10.0.0.1:8080"],
        },
        Case {
            what: "named ports: each Service port takes the slice port of its name",
            svc_ports: &[("http", 80, 8080), ("admin", 9000, 9990)],
            slice_ports: &[("admin", 9990), ("http", 8080)],
            port: 9000,
            exists: true,
            expected: &["10.0.0.1:9990"],
        },
        Case {
            what: "named target port resolved per pod by the slice controller",
            svc_ports: &[("http", 80, 0)],
            slice_ports: &[("http", 3000)],
            port: 80,
            exists: true,
            expected: &["10.0.0.1:3000"],
        },
        Case {
            what: "the port number is the Service port, not the target port",
            svc_ports: &[("http", 80, 8080)],
            slice_ports: &[("http", 8080)],
            port: 8080,
            exists: false,
            expected: &[],
        },
        Case {
            what: "no slice port of that name yet",
            svc_ports: &[("http", 80, 8080)],
            slice_ports: &[("grpc", 9090)],
            port: 80,
            exists: true,
            expected: &[],
        },
    ];
    for case in cases {
        let mut index = mk_index();
        apply_svc(&mut index, mk_svc("ns", "web", "10.96.0.1", case.svc_ports));
        apply_slice(
            &mut index,
            mk_slice(
                "ns",
                "web-a",
                "web",
                case.slice_ports,
                vec![ep("10.0.0.1", None, None)],
            ),
        );
        let rx = index.service_endpoints(&sp("ns", "web", case.port));
        assert_eq!(rx.borrow().service_exists, case.exists, "{}", case.what);
        assert_eq!(addrs(&rx), case.expected, "{}", case.what);
    }
}

#[test]
fn not_ready_endpoints_are_excluded() {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    let mut terminating = ep("10.0.0.4", Some(false), None);
    terminating.conditions.as_mut().unwrap().terminating = Some(true);
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("", 80)],
            vec![
                ep("10.0.0.1", None, None),
                ep("10.0.0.2", Some(true), None),
                ep("10.0.0.3", Some(false), None),
                terminating,
            ],
        ),
    );
    let mut rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(addrs(&rx), ["10.0.0.1:80", "10.0.0.2:80"]);

    // Becoming ready adds the endpoint.
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("", 80)],
            vec![ep("10.0.0.3", Some(true), None)],
        ),
    );
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    assert_eq!(addrs(&rx), ["10.0.0.3:80"]);
}

#[test]
fn fqdn_slices_are_skipped() {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    let mut slice = mk_slice(
        "ns",
        "web-a",
        "web",
        &[("", 80)],
        vec![ep("db.example.com", None, None)],
    );
    slice.address_type = "FQDN".to_string();
    apply_slice(&mut index, slice);
    let mut slice = mk_slice(
        "ns",
        "web-b",
        "web",
        &[("", 80)],
        vec![ep("fd00::1", None, None)],
    );
    slice.address_type = "IPv6".to_string();
    apply_slice(&mut index, slice);
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(addrs(&rx), ["[fd00::1]:80"]);
    assert_eq!(index.metrics().endpoint_slices(), 1);
}

#[test]
fn unrelated_changes_do_not_wake_watchers() {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("", 80)],
            vec![ep("10.0.0.1", None, Some("web-0"))],
        ),
    );
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    let rx_other_port = index.service_endpoints(&sp("ns", "web", 81));

    apply_svc(
        &mut index,
        mk_svc("ns", "api", "10.96.0.2", &[("", 80, 80)]),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "api-a",
            "api",
            &[("", 80)],
            vec![ep("10.0.0.2", None, Some("api-0"))],
        ),
    );
    apply_pod(&mut index, mk_pod("ns", "api-0", "10.0.0.2", "api", true));
    // Re-applying identical objects changes nothing either.
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("", 80)],
            vec![ep("10.0.0.1", None, Some("web-0"))],
        ),
    );
    assert!(!rx.has_changed().unwrap());
    assert!(!rx_other_port.has_changed().unwrap());
    assert!(!rx_other_port.borrow().service_exists);
}

#[test]
fn service_deletion_empties_the_set() {
    let mut index = mk_index();
    let mut rx = index.service_endpoints(&sp("ns", "web", 80));
    assert_eq!(**rx.borrow(), EndpointSet::default());

    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "web-a",
            "web",
            &[("", 80)],
            vec![ep("10.0.0.1", None, None)],
        ),
    );
    // Endpoints without their Service are not served.
    assert!(!rx.has_changed().unwrap());
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    assert_eq!(addrs(&rx), ["10.0.0.1:80"]);

    IndexNamespacedResource::<Service>::delete(&mut index, "ns".into(), "web".into());
    assert!(rx.has_changed().unwrap());
    assert_eq!(**rx.borrow_and_update(), EndpointSet::default());
    assert_eq!(index.metrics().services(), 0);
}

#[test]
fn external_name_services_do_not_exist_for_endpoints() {
    let mut index = mk_index();
    let mut svc = mk_svc("ns", "web", "", &[("", 80, 80)]);
    let spec = svc.spec.as_mut().unwrap();
    spec.type_ = Some("ExternalName".to_string());
    spec.external_name = Some("example.com".to_string());
    apply_svc(&mut index, svc);
    let rx = index.service_endpoints(&sp("ns", "web", 80));
    assert!(!rx.borrow().service_exists);
}

#[test]
fn a_slice_relabelled_to_another_service_moves() {
    let mut index = mk_index();
    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    apply_svc(
        &mut index,
        mk_svc("ns", "api", "10.96.0.2", &[("", 80, 80)]),
    );
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "s",
            "web",
            &[("", 80)],
            vec![ep("10.0.0.1", None, None)],
        ),
    );
    let web = index.service_endpoints(&sp("ns", "web", 80));
    let api = index.service_endpoints(&sp("ns", "api", 80));
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "s",
            "api",
            &[("", 80)],
            vec![ep("10.0.0.1", None, None)],
        ),
    );
    assert!(addrs(&web).is_empty());
    assert_eq!(addrs(&api), ["10.0.0.1:80"]);
}
