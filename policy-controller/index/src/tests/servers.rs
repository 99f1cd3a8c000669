use super::*;
use kube::core::{error_boundary::InvalidObject, DeserializeGuard};

#[test]
fn numeric_server_describes_the_port() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "web-1", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    let rx = watch(&index, "ns", "web-1", 8080);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));

    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!(8080), "HTTP/1", 1),
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(server_of(&rx), named("web"));
    assert_eq!(protocol(&rx), ProxyProtocol::Http1);
    assert!(
        rx.borrow().authorizations.is_empty(),
        "a Server without authorizations admits nobody"
    );
}

#[test]
fn server_for_an_undeclared_port_is_found_by_lookup() {
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    apply_pod(&mut index, mk_pod("ns", "web-1", &[("app", "web")], &[]));
    apply_server(
        &mut index,
        mk_server("ns", "admin", &[("app", "web")], json!(9990), "HTTP/2", 1),
    );
    assert_eq!(
        server_of(&watch(&index, "ns", "web-1", 9990)),
        named("admin")
    );
    // A port nothing describes gets the default, and is watched from now on.
    let other = watch(&index, "ns", "web-1", 7000);
    assert_eq!(
        server_of(&other),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
    apply_server(
        &mut index,
        mk_server("ns", "late", &[("app", "web")], json!(7000), "opaque", 2),
    );
    assert_eq!(server_of(&other), named("late"));
}

#[test]
fn named_ports_resolve_through_containers_and_init_containers() {
    let mut index = mk_index(DefaultPolicy::Deny);
    let mut pod = mk_pod(
        "ns",
        "p",
        &[("app", "web")],
        &[(Some("http"), 8080), (Some("admin"), 9990)],
    );
    let spec = pod.spec.as_mut().unwrap();
    spec.containers
        .push(container("second", &[(Some("http"), 8081)]));
    spec.init_containers = Some(vec![container("sidecar", &[(Some("proxy"), 4143)])]);
    apply_pod(&mut index, pod);
    apply_server(
        &mut index,
        mk_server("ns", "http", &[("app", "web")], json!("http"), "HTTP/1", 1),
    );
    apply_server(
        &mut index,
        mk_server("ns", "proxy", &[], json!("proxy"), "opaque", 1),
    );

    assert_eq!(server_of(&watch(&index, "ns", "p", 8080)), named("http"));
    assert_eq!(server_of(&watch(&index, "ns", "p", 8081)), named("http"));
    assert_eq!(server_of(&watch(&index, "ns", "p", 4143)), named("proxy"));
    assert_eq!(
        server_of(&watch(&index, "ns", "p", 9990)),
        default_ref(DefaultPolicy::Deny)
    );
}

#[test]
fn a_name_the_pod_lacks_describes_nothing() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "grpc", &[("app", "web")], json!("grpc"), "gRPC", 1),
    );
    assert_eq!(
        server_of(&watch(&index, "ns", "p", 8080)),
        default_ref(DefaultPolicy::Deny)
    );
}

#[test]
fn older_server_wins_a_conflict_and_the_loser_is_counted() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "newer", &[("app", "web")], json!(8080), "HTTP/2", 200),
    );
    apply_server(
        &mut index,
        mk_server("ns", "older", &[], json!("http"), "HTTP/1", 100),
    );
    let rx = watch(&index, "ns", "p", 8080);
    assert_eq!(server_of(&rx), named("older"));
    assert_eq!(protocol(&rx), ProxyProtocol::Http1);
    assert_eq!(index.metrics().conflicted_ports(), 1);
    assert_eq!(index.metrics().server_conflicts(), 1);

    // Re-applying the same objects is not a new conflict.
    apply_server(
        &mut index,
        mk_server("ns", "newer", &[("app", "web")], json!(8080), "HTTP/2", 200),
    );
    assert_eq!(index.metrics().server_conflicts(), 1);

    // Once the winner goes, the other Server describes the port and the conflict is over.
    IndexNamespacedResource::<Server>::delete(&mut index, "ns".into(), "older".into());
    assert_eq!(server_of(&rx), named("newer"));
    assert_eq!(index.metrics().conflicted_ports(), 0);
}

#[test]
fn equal_timestamps_fall_back_to_the_name() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, mk_pod("ns", "p", &[("app", "web")], &[]));
    apply_server(
        &mut index,
        mk_server("ns", "b", &[], json!(80), "HTTP/1", 5),
    );
    apply_server(
        &mut index,
        mk_server("ns", "a", &[], json!(80), "HTTP/2", 5),
    );
    assert_eq!(server_of(&watch(&index, "ns", "p", 80)), named("a"));
}

#[test]
fn deleting_a_pod_with_a_conflict_clears_the_gauge() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    apply_server(
        &mut index,
        mk_server("ns", "a", &[], json!(80), "HTTP/1", 1),
    );
    apply_server(
        &mut index,
        mk_server("ns", "b", &[], json!(80), "HTTP/1", 2),
    );
    assert_eq!(index.metrics().conflicted_ports(), 1);
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "p".into());
    assert_eq!(index.metrics().conflicted_ports(), 0);
    assert_eq!(index.metrics().pods(), 0);
}

#[test]
fn unrelated_changes_do_not_wake_watchers() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "web", &[("app", "web")], &[(None, 8080)]),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "db", &[("app", "db")], &[(None, 5432)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!(8080), "HTTP/1", 1),
    );
    let mut rx = watch(&index, "ns", "web", 8080);
    rx.mark_unchanged();

    // A Server for other pods, a Server in another namespace, another pod's update, and this
    // pod's status-only update: none changes the watched policy.
    apply_server(
        &mut index,
        mk_server("ns", "db", &[("app", "db")], json!(5432), "opaque", 1),
    );
    apply_server(
        &mut index,
        mk_server("other", "web", &[("app", "web")], json!(8080), "gRPC", 1),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "db", &[("app", "db"), ("v", "2")], &[(None, 5432)]),
    );
    let mut same = mk_pod("ns", "web", &[("app", "web")], &[(None, 8080)]);
    same.status = Some(Default::default());
    apply_pod(&mut index, same);
    // The same Server applied again.
    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!(8080), "HTTP/1", 1),
    );
    assert!(!rx.has_changed().unwrap());

    // A real change wakes it once.
    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!(8080), "HTTP/2", 1),
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().protocol, ProxyProtocol::Http2);
}

#[test]
fn relabeling_a_pod_or_a_server_moves_the_port() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(None, 80)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "api")], json!(80), "HTTP/1", 1),
    );
    let rx = watch(&index, "ns", "p", 80);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));

    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "api")], &[(None, 80)]),
    );
    assert_eq!(server_of(&rx), named("s"));

    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "other")], json!(80), "HTTP/1", 1),
    );
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));
}

#[tokio::test]
async fn deleting_a_pod_closes_its_watches() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    let mut rx = watch(&index, "ns", "p", 80);
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "p".into());
    assert!(
        rx.changed().await.is_err(),
        "the channel closes with the pod"
    );
    assert_eq!(
        index.pod_port_policy("ns", "p", 80).unwrap_err(),
        LookupError::PodNotFound {
            namespace: "ns".into(),
            pod: "p".into()
        }
    );
}

#[test]
fn lookups_reject_unknown_pods_and_port_zero() {
    let mut index = mk_index(DefaultPolicy::Deny);
    assert!(matches!(
        index.pod_port_policy("ns", "nope", 80),
        Err(LookupError::PodNotFound { .. })
    ));
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[]));
    assert_eq!(
        index.pod_port_policy("ns", "p", 0).unwrap_err(),
        LookupError::InvalidPort
    );
    assert!(matches!(
        index.pod_port_policy("other", "p", 80),
        Err(LookupError::PodNotFound { .. })
    ));
}

#[test]
fn a_malformed_server_is_skipped_and_replaces_nothing() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    apply_server(
        &mut index,
        mk_server("ns", "s", &[], json!(80), "HTTP/1", 1),
    );
    let rx = watch(&index, "ns", "p", 80);
    assert_eq!(server_of(&rx), named("s"));

    // A malformed object (as kube's DeserializeGuard delivers it) for the same Server removes
    // the old version rather than breaking the index.
    let guard = serde_json::from_value::<DeserializeGuard<Server>>(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"namespace": "ns", "name": "s"},
        "spec": {"podSelector": {}, "port": 70000},
    }))
    .unwrap();
    assert!(matches!(guard.0, Err(InvalidObject { .. })));
    IndexNamespacedResource::apply(&mut index, guard);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));
    assert_eq!(index.metrics().invalid_objects(), 1);
    assert_eq!(index.metrics().servers(), 0);

    // A Server that parses but is invalid (In without values) is skipped too.
    let mut bad = mk_server("ns", "bad", &[], json!(80), "HTTP/1", 1);
    bad.spec.pod_selector =
        serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
            .unwrap();
    apply_server(&mut index, bad);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));
    assert_eq!(index.metrics().invalid_objects(), 2);

    // The index keeps working.
    apply_server(
        &mut index,
        mk_server("ns", "good", &[], json!(80), "TLS", 1),
    );
    assert_eq!(server_of(&rx), named("good"));
}

#[test]
fn udp_ports_are_not_policy_ports() {
    let mut index = mk_index(DefaultPolicy::Deny);
    let mut pod = mk_pod("ns", "dns", &[], &[(Some("dns"), 53)]);
    pod.spec.as_mut().unwrap().containers[0]
        .ports
        .as_mut()
        .unwrap()[0]
        .protocol = Some("UDP".into());
    apply_pod(&mut index, pod);
    apply_server(
        &mut index,
        mk_server("ns", "dns", &[], json!("dns"), "opaque", 1),
    );
    assert_eq!(
        server_of(&watch(&index, "ns", "dns", 53)),
        default_ref(DefaultPolicy::Deny)
    );
}

#[test]
fn protocol_only_updates_reach_exactly_the_currently_selected_pods() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(None, 80)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "web")], json!(80), "HTTP/1", 1),
    );
    let mut rx = watch(&index, "ns", "p", 80);
    assert_eq!(protocol(&rx), ProxyProtocol::Http1);

    // The pod leaves the Server; a later protocol change must not reach it.
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "api")], &[(None, 80)]),
    );
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));
    rx.mark_unchanged();
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "web")], json!(80), "HTTP/2", 1),
    );
    assert!(!rx.has_changed().unwrap());

    // It comes back and sees the current protocol; further changes reach it.
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(None, 80)]),
    );
    assert_eq!(
        (server_of(&rx), protocol(&rx)),
        (named("s"), ProxyProtocol::Http2)
    );
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "web")], json!(80), "gRPC", 1),
    );
    assert_eq!(protocol(&rx), ProxyProtocol::Grpc);

    // A pod deleted and re-created under the same name is selected again.
    IndexNamespacedResource::<Pod>::delete(&mut index, "ns".into(), "p".into());
    apply_pod(
        &mut index,
        mk_pod("ns", "p", &[("app", "web")], &[(None, 80)]),
    );
    let rx = watch(&index, "ns", "p", 80);
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "web")], json!(80), "opaque", 1),
    );
    assert_eq!(protocol(&rx), ProxyProtocol::Opaque);

    // After a selector change, protocol changes follow the new selection.
    apply_pod(
        &mut index,
        mk_pod("ns", "q", &[("app", "api")], &[(None, 80)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "api")], json!(80), "opaque", 1),
    );
    let rx_q = watch(&index, "ns", "q", 80);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));
    apply_server(
        &mut index,
        mk_server("ns", "s", &[("app", "api")], json!(80), "TLS", 1),
    );
    assert_eq!(protocol(&rx_q), ProxyProtocol::Tls);
    assert_eq!(server_of(&rx), default_ref(DefaultPolicy::Deny));

    // Authorization changes follow the selection too.
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "a",
            json!({"server": {"name": "s"}, "client": {"unauthenticated": true}}),
        ),
    );
    assert_eq!(rx_q.borrow().authorizations.len(), 1);
    assert!(rx.borrow().authorizations.is_empty());
}

#[test]
fn undeclared_port_watches_are_bounded_per_pod() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, mk_pod("ns", "p", &[], &[(None, 80)]));
    // Ports the pod does not declare: up to the bound, each gets a watch (a port scan of the pod
    // cannot make the index hold one per port tried).
    let first = 1000;
    let watches: Vec<_> = (0..MAX_UNDECLARED_PORT_WATCHES as u16)
        .map(|i| watch(&index, "ns", "p", first + i))
        .collect();
    let over = first + MAX_UNDECLARED_PORT_WATCHES as u16;
    let error = index.pod_port_policy("ns", "p", over).unwrap_err();
    assert_eq!(
        error,
        LookupError::TooManyUndeclaredPorts {
            namespace: "ns".into(),
            pod: "p".into(),
            port: over
        }
    );
    assert!(error.to_string().contains("declare the port"), "{error}");
    // Ports already watched, and declared ports, are still answered.
    assert_eq!(
        server_of(&watch(&index, "ns", "p", first)),
        server_of(&watches[0])
    );
    watch(&index, "ns", "p", 80);
}
