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
