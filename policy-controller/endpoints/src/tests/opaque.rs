//! Opaque ports: the annotation's syntax, on Services and on pods.

use super::*;

#[test]
fn opaque_ports_parse() {
    let ok: &[(&str, &[u16], &[u16])] = &[
        ("", &[], &[1, 65535]),
        ("3306", &[3306], &[3305, 3307]),
        ("3306,5432-5433", &[3306, 5432, 5433], &[5431, 5434]),
        (" 25 , 587 ,", &[25, 587], &[26]),
        ("25,,26", &[25, 26], &[27]),
        ("1-65535", &[1, 80, 65535], &[]),
        ("10-20,15-30,31", &[10, 25, 30, 31], &[9, 32]),
    ];
    for (value, inside, outside) in ok {
        let ports = OpaquePorts::parse(value).unwrap();
        for port in *inside {
            assert!(ports.contains(*port), "{value:?} contains {port}");
        }
        for port in *outside {
            assert!(!ports.contains(*port), "{value:?} excludes {port}");
        }
    }
    assert_eq!(
        OpaquePorts::parse("10-20,15-30,31").unwrap().ranges(),
        [10..=31]
    );

    let bad = [
        "mysql", "0", "65536", "3306,-5", "20-10", "1-2-3", "+80", "80;443",
    ];
    for value in bad {
        let error = OpaquePorts::parse(value).unwrap_err();
        assert_eq!(error.value, value);
        assert!(
            error.to_string().contains("ports") || error.to_string().contains("range"),
            "{value:?}: {error}"
        );
    }
}

#[test]
fn opaque_annotations_mark_service_and_pod_ports() {
    let mut index = mk_index();
    let mut svc = mk_svc(
        "ns",
        "db",
        "10.96.0.5",
        &[("", 3306, 3306), ("", 9104, 9104)],
    );
    annotate(&mut svc.metadata, OPAQUE_PORTS_ANNOTATION, "3306");
    apply_svc(&mut index, svc);
    let mut pod = mk_pod("ns", "db-0", "10.0.0.5", "db", true);
    annotate(&mut pod.metadata, OPAQUE_PORTS_ANNOTATION, "3306,5432-5433");
    apply_pod(&mut index, pod);
    apply_slice(
        &mut index,
        mk_slice(
            "ns",
            "db-a",
            "db",
            &[("", 3306)],
            vec![ep("10.0.0.5", None, Some("db-0"))],
        ),
    );

    assert!(matches!(
        target(&index, "10.96.0.5:3306"),
        OutboundTarget::Service { opaque: true, .. }
    ));
    assert!(matches!(
        target(&index, "10.96.0.5:9104"),
        OutboundTarget::Service { opaque: false, .. }
    ));
    assert!(matches!(
        target(&index, "10.0.0.5:5433"),
        OutboundTarget::Pod(Endpoint { opaque: true, .. })
    ));
    assert!(matches!(
        target(&index, "10.0.0.5:80"),
        OutboundTarget::Pod(Endpoint { opaque: false, .. })
    ));
    let rx = index.service_endpoints(&sp("ns", "db", 3306));
    assert!(endpoint(&rx, "10.0.0.5:3306").opaque);
    assert_eq!(index.metrics().invalid_objects(), 0);
}

#[test]
fn malformed_opaque_annotations_are_counted_and_ignored() {
    let mut index = mk_index();
    let mut svc = mk_svc("ns", "db", "10.96.0.5", &[("", 3306, 3306)]);
    annotate(&mut svc.metadata, OPAQUE_PORTS_ANNOTATION, "mysql");
    apply_svc(&mut index, svc.clone());
    assert_eq!(index.metrics().invalid_objects(), 1);
    // Re-applying the same value (e.g. on a resync) counts nothing more.
    apply_svc(&mut index, svc);
    assert_eq!(index.metrics().invalid_objects(), 1);

    let mut pod = mk_pod("ns", "db-0", "10.0.0.5", "db", true);
    annotate(&mut pod.metadata, OPAQUE_PORTS_ANNOTATION, "3306-");
    apply_pod(&mut index, pod);
    assert_eq!(index.metrics().invalid_objects(), 2);

    assert_eq!(
        target(&index, "10.96.0.5:3306"),
        OutboundTarget::Service {
            service: sp("ns", "db", 3306),
            opaque: false
        }
    );
    assert!(matches!(
        target(&index, "10.0.0.5:3306"),
        OutboundTarget::Pod(Endpoint { opaque: false, .. })
    ));

    // Fixing the annotation takes effect.
    let mut svc = mk_svc("ns", "db", "10.96.0.5", &[("", 3306, 3306)]);
    annotate(&mut svc.metadata, OPAQUE_PORTS_ANNOTATION, "3306");
    apply_svc(&mut index, svc);
    assert!(matches!(
        target(&index, "10.96.0.5:3306"),
        OutboundTarget::Service { opaque: true, .. }
    ));
    assert_eq!(index.metrics().invalid_objects(), 2);
}

#[test]
fn without_annotations_defaults_apply_and_a_meshed_pod_follows_its_proxy() {
    let mut index = mk_index();
    // No annotation: the default opaque ports (25, 3306 in the test mesh) apply to the Service.
    apply_svc(
        &mut index,
        mk_svc("ns", "db", "10.96.0.6", &[("", 3306, 3306), ("", 80, 80)]),
    );
    assert!(matches!(
        target(&index, "10.96.0.6:3306"),
        OutboundTarget::Service { opaque: true, .. }
    ));
    assert!(matches!(
        target(&index, "10.96.0.6:80"),
        OutboundTarget::Service { opaque: false, .. }
    ));
    // An unmeshed pod without annotation: the defaults.
    apply_pod(
        &mut index,
        mk_pod("ns", "plain", "10.0.0.6", "default", false),
    );
    let OutboundTarget::Pod(plain) = target(&index, "10.0.0.6:3306") else {
        panic!("a pod target")
    };
    assert!(plain.opaque);
    // A meshed pod: what its proxy was injected with, whatever the defaults or annotations.
    let mut meshed = mk_pod("ns", "meshed", "10.0.0.7", "db", true);
    annotate(&mut meshed.metadata, OPAQUE_PORTS_ANNOTATION, "9999");
    if let Some(spec) = meshed.spec.as_mut() {
        let proxy = spec
            .containers
            .iter_mut()
            .find(|c| c.name == PROXY_CONTAINER_NAME)
            .expect("mk_pod adds the proxy to meshed pods");
        proxy.env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
            name: "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION".to_string(),
            value: Some("5432".to_string()),
            ..Default::default()
        }]);
    }
    apply_pod(&mut index, meshed);
    for (port, opaque) in [(5432, true), (3306, false), (9999, false)] {
        let OutboundTarget::Pod(ep) = target(&index, &format!("10.0.0.7:{port}")) else {
            panic!("a pod target")
        };
        assert_eq!(ep.opaque, opaque, "meshed pod port {port}");
    }
}

#[test]
fn linkerds_spelling_of_the_annotation_counts_and_weft_s_wins() {
    const LINKERD: &str = "config.linkerd.io/opaque-ports";
    let mut index = mk_index();
    let mut svc = mk_svc(
        "ns",
        "db",
        "10.96.0.5",
        &[("", 3306, 3306), ("", 9104, 9104), ("", 5432, 5432)],
    );
    annotate(&mut svc.metadata, LINKERD, "9104");
    apply_svc(&mut index, svc.clone());
    assert!(matches!(
        target(&index, "10.96.0.5:9104"),
        OutboundTarget::Service { opaque: true, .. }
    ));
    assert!(matches!(
        target(&index, "10.96.0.5:3306"),
        OutboundTarget::Service { opaque: false, .. }
    ));
    // Both spellings: Weft's wins.
    annotate(&mut svc.metadata, OPAQUE_PORTS_ANNOTATION, "5432");
    apply_svc(&mut index, svc);
    assert!(matches!(
        target(&index, "10.96.0.5:5432"),
        OutboundTarget::Service { opaque: true, .. }
    ));
    assert!(matches!(
        target(&index, "10.96.0.5:9104"),
        OutboundTarget::Service { opaque: false, .. }
    ));

    // An unmeshed pod's own annotation, under Linkerd's spelling.
    let mut pod = mk_pod("ns", "db-0", "10.0.0.5", "db", false);
    annotate(&mut pod.metadata, LINKERD, "7000-7001");
    apply_pod(&mut index, pod);
    assert!(matches!(
        target(&index, "10.0.0.5:7001"),
        OutboundTarget::Pod(Endpoint { opaque: true, .. })
    ));
    assert!(matches!(
        target(&index, "10.0.0.5:3306"),
        OutboundTarget::Pod(Endpoint { opaque: false, .. })
    ));
    assert_eq!(index.metrics().invalid_objects(), 0);
}
