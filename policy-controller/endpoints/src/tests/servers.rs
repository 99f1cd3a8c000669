//! Servers with `proxyProtocol: opaque` make a meshed pod's ports opaque, without any
//! opaque-ports annotation: its endpoints and its pod target say so, and they change with the
//! Server.

use super::*;
use k8s_openapi::api::core::v1::ContainerPort;
use kube::core::{error_boundary::InvalidObject, DeserializeGuard};
use weft_policy_k8s_api::{LabelSelector, Port, ProxyProtocol, Server, ServerSpec};

fn mk_server(ns: &str, name: &str, app: &str, port: &str, protocol: ProxyProtocol) -> Server {
    let mut server = Server::new(
        name,
        ServerSpec {
            pod_selector: LabelSelector::from_labels([("app", app)]),
            port: Port::parse(port).unwrap(),
            proxy_protocol: protocol,
        },
    );
    server.metadata.namespace = Some(ns.to_string());
    server
}

fn apply_server(index: &mut EndpointsIndex, server: Server) {
    IndexNamespacedResource::<Server>::apply(index, server);
}

fn delete_server(index: &mut EndpointsIndex, ns: &str, name: &str) {
    IndexNamespacedResource::<Server>::delete(index, ns.to_string(), name.to_string());
}

/// A pod labelled `app: <app>` with a container port 6379 named `redis`.
fn labelled_pod(ns: &str, name: &str, ip: &str, app: &str, meshed: bool) -> Pod {
    let mut pod = mk_pod(ns, name, ip, "redis", meshed);
    pod.metadata.labels = Some([("app".to_string(), app.to_string())].into());
    pod.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
        name: Some("redis".to_string()),
        container_port: 6379,
        ..Default::default()
    }]);
    pod
}

/// A Service `redis` on port 6379 with one slice naming the pod `redis-0` at 10.0.0.7.
fn redis_service(index: &mut EndpointsIndex) {
    apply_svc(
        index,
        mk_svc("ns", "redis", "10.96.0.7", &[("", 6379, 6379)]),
    );
    apply_slice(
        index,
        mk_slice(
            "ns",
            "redis-a",
            "redis",
            &[("", 6379)],
            vec![ep("10.0.0.7", None, Some("redis-0"))],
        ),
    );
}

fn pod_target_opaque(index: &EndpointsIndex, at: &str) -> bool {
    match target(index, at) {
        OutboundTarget::Pod(endpoint) => endpoint.opaque,
        other => panic!("{at} is not a pod target: {other:?}"),
    }
}

#[test]
fn an_opaque_server_by_number_marks_the_meshed_pod_port_and_follows_the_server() {
    let mut index = mk_index();
    redis_service(&mut index);
    apply_pod(
        &mut index,
        labelled_pod("ns", "redis-0", "10.0.0.7", "redis", true),
    );
    let mut endpoints = index.service_endpoints(&sp("ns", "redis", 6379));
    let mut pod_target = index.outbound_target(addr("10.0.0.7:6379"));
    assert!(!endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(!pod_target_opaque(&index, "10.0.0.7:6379"));

    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
    );
    assert!(
        endpoints.has_changed().unwrap(),
        "the Service's endpoints are updated"
    );
    endpoints.mark_unchanged();
    assert!(endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(
        pod_target.has_changed().unwrap(),
        "the pod target is updated"
    );
    assert!(matches!(
        &*pod_target.borrow_and_update(),
        OutboundTarget::Pod(Endpoint { opaque: true, .. })
    ));
    // Other ports of the pod are not affected.
    assert!(!pod_target_opaque(&index, "10.0.0.7:9121"));

    // The Server now speaks HTTP/1: the port is no longer opaque.
    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Http1),
    );
    assert!(endpoints.has_changed().unwrap());
    assert!(!endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(!pod_target_opaque(&index, "10.0.0.7:6379"));
    assert!(pod_target.has_changed().unwrap());

    // Opaque again, then deleted.
    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
    );
    assert!(pod_target_opaque(&index, "10.0.0.7:6379"));
    delete_server(&mut index, "ns", "redis");
    assert!(!pod_target_opaque(&index, "10.0.0.7:6379"));
    assert!(!endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(
        index.state.opaque_servers.is_empty(),
        "nothing is kept of it"
    );
}

#[test]
fn an_opaque_server_by_port_name_and_a_pod_that_comes_later() {
    let mut index = mk_index();
    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "redis", ProxyProtocol::Opaque),
    );
    redis_service(&mut index);
    apply_pod(
        &mut index,
        labelled_pod("ns", "redis-0", "10.0.0.7", "redis", true),
    );
    let endpoints = index.service_endpoints(&sp("ns", "redis", 6379));
    assert!(endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(pod_target_opaque(&index, "10.0.0.7:6379"));
    assert!(!pod_target_opaque(&index, "10.0.0.7:6380"));

    // The pod is relabelled out of the Server's selector.
    apply_pod(
        &mut index,
        labelled_pod("ns", "redis-0", "10.0.0.7", "cache", true),
    );
    assert!(!endpoint(&endpoints, "10.0.0.7:6379").opaque);
    assert!(!pod_target_opaque(&index, "10.0.0.7:6379"));
}

#[test]
fn servers_that_do_not_apply_change_nothing() {
    let cases: &[(&str, Server, bool)] = &[
        (
            "another namespace",
            mk_server("other", "redis", "redis", "6379", ProxyProtocol::Opaque),
            true,
        ),
        (
            "another selector",
            mk_server("ns", "redis", "cache", "6379", ProxyProtocol::Opaque),
            true,
        ),
        (
            "another port name",
            mk_server("ns", "redis", "redis", "metrics", ProxyProtocol::Opaque),
            true,
        ),
        (
            "not opaque",
            mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Tls),
            true,
        ),
        (
            "an unmeshed pod (no proxy to make the port opaque)",
            mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
            false,
        ),
    ];
    for (case, server, meshed) in cases {
        let mut index = mk_index();
        redis_service(&mut index);
        apply_pod(
            &mut index,
            labelled_pod("ns", "redis-0", "10.0.0.7", "redis", *meshed),
        );
        apply_server(&mut index, server.clone());
        let endpoints = index.service_endpoints(&sp("ns", "redis", 6379));
        assert!(!endpoint(&endpoints, "10.0.0.7:6379").opaque, "{case}");
        assert!(!pod_target_opaque(&index, "10.0.0.7:6379"), "{case}");
    }
}

#[test]
fn a_server_that_becomes_invalid_no_longer_makes_ports_opaque() {
    let mut index = mk_index();
    apply_pod(
        &mut index,
        labelled_pod("ns", "redis-0", "10.0.0.7", "redis", true),
    );
    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
    );
    assert!(pod_target_opaque(&index, "10.0.0.7:6379"));

    let mut invalid = mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque);
    invalid.spec.pod_selector = LabelSelector::from_labels([("app", "not a label value!")]);
    apply_server(&mut index, invalid);
    assert!(
        !pod_target_opaque(&index, "10.0.0.7:6379"),
        "a selector that does not validate"
    );

    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
    );
    let unreadable = DeserializeGuard::<Server>(Err(InvalidObject {
        error: "spec.port: invalid type".to_string(),
        metadata: meta("ns", "redis"),
    }));
    IndexNamespacedResource::<DeserializeGuard<Server>>::apply(&mut index, unreadable);
    assert!(
        !pod_target_opaque(&index, "10.0.0.7:6379"),
        "a Server that does not deserialize"
    );
}

#[test]
fn the_annotation_and_servers_add_up() {
    let mut index = mk_index();
    let mut pod = labelled_pod("ns", "redis-0", "10.0.0.7", "redis", true);
    annotate(&mut pod.metadata, OPAQUE_PORTS_ANNOTATION, "5432");
    apply_pod(&mut index, pod);
    apply_server(
        &mut index,
        mk_server("ns", "redis", "redis", "6379", ProxyProtocol::Opaque),
    );
    assert!(pod_target_opaque(&index, "10.0.0.7:6379"));
    assert!(pod_target_opaque(&index, "10.0.0.7:5432"));
    assert!(!pod_target_opaque(&index, "10.0.0.7:8080"));
}
