use super::*;

fn policy_of(index: &Index, pod: &str) -> ServerRef {
    server_of(&watch(index, "ns", pod, 80))
}

#[test]
fn cluster_default_applies_without_overrides() {
    for default in DefaultPolicy::ALL {
        let mut index = mk_index(default);
        apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
        let rx = watch(&index, "ns", "p", 80);
        assert_eq!(
            *rx.borrow(),
            InboundPolicy::default_for(default, index.cluster())
        );
    }
}

#[test]
fn cluster_policies_use_cluster_networks() {
    let mut index = mk_index(DefaultPolicy::ClusterUnauthenticated);
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    let rx = watch(&index, "ns", "p", 80);
    let policy = rx.borrow();
    assert_eq!(policy.authorizations.len(), 1);
    assert_eq!(
        policy.authorizations[0].networks[0].cidr.to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        policy.authorizations[0].authentication,
        Authentication::Unauthenticated
    );
}

#[test]
fn namespace_then_pod_override_the_cluster_default() {
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    apply_pod(&mut index, mk_pod("ns", "plain", &[], &[(None, 80)]));
    let mut annotated = mk_pod("ns", "annotated", &[], &[(None, 80)]);
    annotated.metadata.annotations = Some(
        [(
            DEFAULT_POLICY_ANNOTATION.to_string(),
            "cluster-authenticated".to_string(),
        )]
        .into(),
    );
    apply_pod(&mut index, annotated);
    let plain = watch(&index, "ns", "plain", 80);
    assert_eq!(
        server_of(&plain),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
    assert_eq!(
        policy_of(&index, "annotated"),
        default_ref(DefaultPolicy::ClusterAuthenticated)
    );

    apply_namespace(&mut index, mk_namespace("ns", Some("deny")));
    assert_eq!(server_of(&plain), default_ref(DefaultPolicy::Deny));
    assert_eq!(
        policy_of(&index, "annotated"),
        default_ref(DefaultPolicy::ClusterAuthenticated)
    );

    // Other namespaces keep the cluster default.
    apply_pod(&mut index, mk_pod("other", "p", &[], &[(None, 80)]));
    assert_eq!(
        server_of(&watch(&index, "other", "p", 80)),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );

    // Removing the annotation (or the namespace) restores the cluster default.
    apply_namespace(&mut index, mk_namespace("ns", None));
    assert_eq!(
        server_of(&plain),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
    apply_namespace(&mut index, mk_namespace("ns", Some("all-authenticated")));
    assert_eq!(
        server_of(&plain),
        default_ref(DefaultPolicy::AllAuthenticated)
    );
    IndexClusterResource::<Namespace>::delete(&mut index, "ns".into());
    assert_eq!(
        server_of(&plain),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
}

#[test]
fn invalid_overrides_fall_back_to_the_cluster_default() {
    let mut index = mk_index(DefaultPolicy::ClusterUnauthenticated);
    apply_namespace(&mut index, mk_namespace("ns", Some("allow-everything")));
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    assert_eq!(
        policy_of(&index, "p"),
        default_ref(DefaultPolicy::ClusterUnauthenticated)
    );

    apply_namespace(&mut index, mk_namespace("ns2", Some("deny")));
    let mut pod = mk_pod("ns2", "p", &[], &[(None, 80)]);
    pod.metadata.annotations =
        Some([(DEFAULT_POLICY_ANNOTATION.to_string(), "Deny".to_string())].into());
    apply_pod(&mut index, pod);
    assert_eq!(
        server_of(&watch(&index, "ns2", "p", 80)),
        default_ref(DefaultPolicy::ClusterUnauthenticated)
    );
}

#[test]
fn a_server_overrides_any_default() {
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    apply_namespace(&mut index, mk_namespace("ns", Some("all-authenticated")));
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    apply_server(
        &mut index,
        mk_server("ns", "s", &[], json!(80), "HTTP/1", 1),
    );
    let rx = watch(&index, "ns", "p", 80);
    assert_eq!(server_of(&rx), named("s"));
    // A namespace default change does not touch ports a Server describes.
    let mut rx = rx;
    rx.mark_unchanged();
    apply_namespace(&mut index, mk_namespace("ns", Some("deny")));
    assert!(!rx.has_changed().unwrap());
}

#[test]
fn linkerds_spelling_of_the_default_policy_annotation_counts_and_weft_s_wins() {
    const LINKERD: &str = "config.linkerd.io/default-inbound-policy";
    let annotations = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    let mut namespace = mk_namespace("ns", None);
    namespace.metadata.annotations = annotations(&[(LINKERD, "all-authenticated")]);
    apply_namespace(&mut index, namespace);
    apply_pod(&mut index, mk_pod("ns", "plain", &[], &[(None, 80)]));
    assert_eq!(
        policy_of(&index, "plain"),
        default_ref(DefaultPolicy::AllAuthenticated)
    );

    let mut pod = mk_pod("ns", "linkerd", &[], &[(None, 80)]);
    pod.metadata.annotations = annotations(&[(LINKERD, "deny")]);
    apply_pod(&mut index, pod);
    assert_eq!(
        policy_of(&index, "linkerd"),
        default_ref(DefaultPolicy::Deny)
    );

    let mut pod = mk_pod("ns", "both", &[], &[(None, 80)]);
    pod.metadata.annotations = annotations(&[
        (LINKERD, "deny"),
        (DEFAULT_POLICY_ANNOTATION, "cluster-authenticated"),
    ]);
    apply_pod(&mut index, pod);
    assert_eq!(
        policy_of(&index, "both"),
        default_ref(DefaultPolicy::ClusterAuthenticated)
    );
}

fn annotated_pod(name: &str, annotations: &[(&str, &str)], ports: &[i32]) -> Pod {
    let ports: Vec<(Option<&str>, i32)> = ports.iter().map(|p| (None, *p)).collect();
    let mut pod = mk_pod("ns", name, &[], &ports);
    pod.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    pod
}

#[test]
fn require_identity_ports_admit_only_meshed_clients_by_default() {
    for key in [
        "config.weft.dev/proxy-require-identity-inbound-ports",
        "config.linkerd.io/proxy-require-identity-inbound-ports",
    ] {
        for (cluster_default, expected) in [
            (
                DefaultPolicy::AllUnauthenticated,
                DefaultPolicy::AllAuthenticated,
            ),
            (
                DefaultPolicy::ClusterUnauthenticated,
                DefaultPolicy::ClusterAuthenticated,
            ),
            (DefaultPolicy::Deny, DefaultPolicy::Deny),
            (
                DefaultPolicy::AllAuthenticated,
                DefaultPolicy::AllAuthenticated,
            ),
        ] {
            let mut index = mk_index(cluster_default);
            apply_pod(
                &mut index,
                annotated_pod("p", &[(key, "80,9000-9001")], &[80, 81, 9001]),
            );
            for (port, policy) in [(80, expected), (9001, expected), (81, cluster_default)] {
                let rx = watch(&index, "ns", "p", port);
                assert_eq!(
                    *rx.borrow(),
                    InboundPolicy::default_for(policy, index.cluster()),
                    "{key}, {cluster_default:?}, port {port}"
                );
            }
        }
    }
    // A Server describes its port whatever the annotation says.
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    let key = "config.weft.dev/proxy-require-identity-inbound-ports";
    apply_pod(&mut index, annotated_pod("p", &[(key, "80")], &[80]));
    apply_server(
        &mut index,
        mk_server("ns", "s", &[], json!(80), "HTTP/1", 1),
    );
    assert_eq!(policy_of(&index, "p"), named("s"));
    // A malformed list counts as none.
    apply_pod(&mut index, annotated_pod("q", &[(key, "http")], &[81]));
    assert_eq!(
        server_of(&watch(&index, "ns", "q", 81)),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
}

#[test]
fn a_default_port_is_opaque_as_the_pod_says() {
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    // The annotation, in either spelling, on an unmeshed pod.
    for (name, key) in [
        ("weft", "config.weft.dev/opaque-ports"),
        ("linkerd", "config.linkerd.io/opaque-ports"),
    ] {
        apply_pod(
            &mut index,
            annotated_pod(name, &[(key, "6379")], &[6379, 80]),
        );
        assert_eq!(
            protocol(&watch(&index, "ns", name, 6379)),
            ProxyProtocol::Opaque,
            "{key}"
        );
        assert_eq!(
            protocol(&watch(&index, "ns", name, 80)),
            ProxyProtocol::Unknown,
            "{key}"
        );
    }
    // A meshed pod: what its proxy was injected with wins over the annotation.
    let mut meshed = annotated_pod(
        "meshed",
        &[("config.weft.dev/opaque-ports", "6379")],
        &[6379, 5432],
    );
    meshed.spec.as_mut().unwrap().init_containers =
        Some(vec![k8s_openapi::api::core::v1::Container {
            name: "weft-proxy".to_string(),
            env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
                name: "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION".to_string(),
                value: Some("5432".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }]);
    apply_pod(&mut index, meshed);
    assert_eq!(
        protocol(&watch(&index, "ns", "meshed", 5432)),
        ProxyProtocol::Opaque
    );
    assert_eq!(
        protocol(&watch(&index, "ns", "meshed", 6379)),
        ProxyProtocol::Unknown
    );
    // A Server's protocol wins over both.
    apply_server(
        &mut index,
        mk_server("ns", "s", &[], json!(5432), "HTTP/1", 1),
    );
    assert_eq!(
        protocol(&watch(&index, "ns", "meshed", 5432)),
        ProxyProtocol::Http1
    );
}

#[test]
fn without_the_pods_say_the_clusters_default_opaque_ports_apply() {
    let mut settings = cluster(DefaultPolicy::AllUnauthenticated);
    settings.default_opaque_ports = weft_core::PortList::parse("3306").unwrap();
    let mut index = Index::new(settings, IndexMetrics::register(&mut Registry::default()));
    apply_pod(
        &mut index,
        mk_pod("ns", "db", &[], &[(None, 3306), (None, 80)]),
    );
    assert_eq!(
        protocol(&watch(&index, "ns", "db", 3306)),
        ProxyProtocol::Opaque
    );
    assert_eq!(
        protocol(&watch(&index, "ns", "db", 80)),
        ProxyProtocol::Unknown
    );
    // The pod's own (empty) list replaces the default.
    apply_pod(
        &mut index,
        annotated_pod("none", &[("config.weft.dev/opaque-ports", "")], &[3306]),
    );
    assert_eq!(
        protocol(&watch(&index, "ns", "none", 3306)),
        ProxyProtocol::Unknown
    );
}
