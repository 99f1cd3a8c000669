//! AuthorizationPolicies, authentications and HTTPRoutes.

use super::*;
use kube::core::DeserializeGuard;
use weft_policy_k8s_api::{
    AuthorizationPolicy, HTTPRoute, MeshTLSAuthentication, NetworkAuthentication,
};

fn obj<T: serde::de::DeserializeOwned>(
    api: &str,
    kind: &str,
    name: &str,
    spec: serde_json::Value,
) -> T {
    serde_json::from_value(json!({
        "apiVersion": api, "kind": kind,
        "metadata": {"namespace": "ns", "name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn apply_policy(
    index: &mut Index,
    name: &str,
    target: serde_json::Value,
    authns: serde_json::Value,
) {
    let policy: AuthorizationPolicy = obj(
        "policy.weft.dev/v1beta1",
        "AuthorizationPolicy",
        name,
        json!({"targetRef": target, "requiredAuthenticationRefs": authns}),
    );
    IndexNamespacedResource::apply(index, DeserializeGuard(Ok(policy)));
}

fn apply_mesh_tls(index: &mut Index, name: &str, spec: serde_json::Value) {
    let authn: MeshTLSAuthentication = obj(
        "policy.weft.dev/v1beta1",
        "MeshTLSAuthentication",
        name,
        spec,
    );
    IndexNamespacedResource::apply(index, DeserializeGuard(Ok(authn)));
}

fn apply_network(index: &mut Index, name: &str, spec: serde_json::Value) {
    let authn: NetworkAuthentication = obj(
        "policy.weft.dev/v1beta1",
        "NetworkAuthentication",
        name,
        spec,
    );
    IndexNamespacedResource::apply(index, DeserializeGuard(Ok(authn)));
}

fn apply_route(index: &mut Index, name: &str, spec: serde_json::Value) {
    let route: HTTPRoute = obj("gateway.networking.k8s.io/v1", "HTTPRoute", name, spec);
    IndexNamespacedResource::<HTTPRoute>::apply(index, route);
}

fn server_ref(name: &str) -> serde_json::Value {
    json!({"group": "policy.weft.dev", "kind": "Server", "name": name})
}

fn route_ref(name: &str) -> serde_json::Value {
    json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name})
}

fn mtls_ref(name: &str) -> serde_json::Value {
    json!({"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": name})
}

fn net_ref(name: &str) -> serde_json::Value {
    json!({"group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": name})
}

/// Pods web (8080, Server web, HTTP/1), api (9090, Server api, gRPC) and other (7070, no Server).
fn setup() -> Index {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(
        &mut index,
        mk_pod("ns", "web", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "api", &[("app", "api")], &[(Some("grpc"), 9090)]),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "other", &[("app", "other")], &[(None, 7070)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!("http"), "HTTP/1", 1),
    );
    apply_server(
        &mut index,
        mk_server("ns", "api", &[("app", "api")], json!("grpc"), "gRPC", 1),
    );
    index
}

fn authz_json(rx: &watch::Receiver<InboundPolicy>) -> serde_json::Value {
    serde_json::to_value(&rx.borrow().authorizations).unwrap()
}

#[test]
fn policy_on_a_server_requires_its_authentications() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    let mut api = watch(&index, "ns", "api", 9090);
    api.mark_unchanged();

    apply_policy(
        &mut index,
        "billing-only",
        server_ref("web"),
        json!([mtls_ref("billing"), net_ref("pods")]),
    );
    assert_eq!(
        authz_json(&web),
        json!([]),
        "its authentications do not exist yet: nobody"
    );

    apply_mesh_tls(
        &mut index,
        "billing",
        json!({"identityRefs": [
        {"kind": "ServiceAccount", "name": "billing"}, {"kind": "Namespace", "name": "ops"}]}),
    );
    assert_eq!(
        authz_json(&web),
        json!([]),
        "the NetworkAuthentication is still missing"
    );

    apply_network(
        &mut index,
        "pods",
        json!({"networks": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}]}),
    );
    assert_eq!(
        authz_json(&web),
        json!([{
            "name": "AuthorizationPolicy/billing-only",
            "networks": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}],
            "authentication": {"kind": "mesh-tls", "serviceAccounts": [
                {"name": "billing", "namespace": "ns"}, {"name": "*", "namespace": "ops"}]},
        }])
    );
    assert!(
        !api.has_changed().unwrap(),
        "the api Server is not targeted"
    );
    assert_eq!(index.metrics().authorization_policies(), 1);

    // An authentication deleted: the policy authorizes nobody again.
    IndexNamespacedResource::<DeserializeGuard<MeshTLSAuthentication>>::delete(
        &mut index,
        "ns".into(),
        "billing".into(),
    );
    assert_eq!(authz_json(&web), json!([]));
}

#[test]
fn service_accounts_and_no_authentications() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    apply_policy(&mut index, "a-anyone", server_ref("web"), json!([]));
    apply_policy(
        &mut index,
        "b-sas",
        server_ref("web"),
        json!([{"kind": "ServiceAccount", "name": "client"}]),
    );
    assert_eq!(
        authz_json(&web),
        json!([
            {"name": "AuthorizationPolicy/a-anyone", "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}],
             "authentication": {"kind": "unauthenticated"}},
            {"name": "AuthorizationPolicy/b-sas", "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}],
             "authentication": {"kind": "mesh-tls", "serviceAccounts": [{"name": "client", "namespace": "ns"}]}},
        ])
    );
}

#[test]
fn namespace_policy_reaches_every_server_but_not_default_ports() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    let api = watch(&index, "ns", "api", 9090);
    let mut other = watch(&index, "ns", "other", 7070);
    other.mark_unchanged();
    apply_policy(
        &mut index,
        "ns-wide",
        json!({"kind": "Namespace", "name": "ns"}),
        json!([]),
    );
    assert_eq!(authz_json(&web)[0]["name"], "AuthorizationPolicy/ns-wide");
    assert_eq!(authz_json(&api)[0]["name"], "AuthorizationPolicy/ns-wide");
    assert!(!other.has_changed().unwrap());
    assert_eq!(
        authz_json(&other),
        json!([]),
        "the default policy (deny) applies"
    );
    // Both a ServerAuthorization and a policy on one port.
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "legacy",
            json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}),
        ),
    );
    let names: Vec<_> = web
        .borrow()
        .authorizations
        .iter()
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(
        names,
        ["ServerAuthorization/legacy", "AuthorizationPolicy/ns-wide"]
    );
}

#[test]
fn routes_attach_to_their_servers_with_their_own_authorizations() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    let mut api = watch(&index, "ns", "api", 9090);
    api.mark_unchanged();

    apply_route(
        &mut index,
        "refunds",
        json!({
            "parentRefs": [server_ref("web"), server_ref("api")],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/refunds"}, "method": "POST"}]}],
        }),
    );
    apply_route(
        &mut index,
        "health",
        json!({
            "parentRefs": [server_ref("web")],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/health"}, "method": "GET"}]}],
        }),
    );
    apply_policy(&mut index, "health-anyone", route_ref("health"), json!([]));
    apply_policy(
        &mut index,
        "refunds-billing",
        route_ref("refunds"),
        json!([{"kind": "ServiceAccount", "name": "billing"}]),
    );

    let policy = web.borrow().clone();
    assert!(
        policy.authorizations.is_empty(),
        "no Server-wide authorization"
    );
    let routes = serde_json::to_value(&policy.http_routes).unwrap();
    assert_eq!(
        routes,
        json!([
            {"name": "health",
             "rules": [{"matches": [{"path": {"exact": "/health"}, "method": "GET"}]}],
             "authorizations": [{"name": "AuthorizationPolicy/health-anyone",
                 "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}], "authentication": {"kind": "unauthenticated"}}]},
            {"name": "refunds",
             "rules": [{"matches": [{"path": {"prefix": "/refunds"}, "method": "POST"}]}],
             "authorizations": [{"name": "AuthorizationPolicy/refunds-billing",
                 "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}],
                 "authentication": {"kind": "mesh-tls", "serviceAccounts": [{"name": "billing", "namespace": "ns"}]}}]},
        ])
    );
    assert!(
        api.borrow().http_routes.is_empty(),
        "a gRPC Server has no HTTP routes"
    );
    assert_eq!(index.metrics().http_routes(), 2);

    // Detaching a route from web removes it there; deleting the other empties the list.
    apply_route(
        &mut index,
        "refunds",
        json!({"parentRefs": [server_ref("api")]}),
    );
    let names: Vec<_> = web
        .borrow()
        .http_routes
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["health"]);
    IndexNamespacedResource::<HTTPRoute>::delete(&mut index, "ns".into(), "health".into());
    assert!(web.borrow().http_routes.is_empty());
}

#[test]
fn a_route_change_touches_only_the_pods_of_its_servers() {
    let mut index = setup();
    apply_pod(
        &mut index,
        mk_pod("ns", "web-2", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    apply_server(
        &mut index,
        mk_server("ns", "admin", &[("app", "other")], json!(7070), "HTTP/2", 1),
    );
    let mut web = watch(&index, "ns", "web", 8080);
    let mut web2 = watch(&index, "ns", "web-2", 8080);
    let mut other = watch(&index, "ns", "other", 7070);
    for rx in [&mut web, &mut web2, &mut other] {
        rx.mark_unchanged();
    }
    apply_route(
        &mut index,
        "r",
        json!({"parentRefs": [server_ref("admin")]}),
    );
    assert!(other.has_changed().unwrap());
    assert!(!web.has_changed().unwrap() && !web2.has_changed().unwrap());
    // An identical re-apply (a resync) wakes nobody.
    other.mark_unchanged();
    apply_route(
        &mut index,
        "r",
        json!({"parentRefs": [server_ref("admin")]}),
    );
    assert!(!other.has_changed().unwrap());
}

#[test]
fn foreign_and_invalid_routes_are_not_applied() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    apply_route(
        &mut index,
        "gateway-route",
        json!({"parentRefs": [{"name": "public"}]}),
    );
    assert!(web.borrow().http_routes.is_empty());
    assert_eq!(index.metrics().http_routes(), 0);
    assert_eq!(
        index.metrics().invalid_objects(),
        0,
        "another implementation's route is not invalid"
    );

    apply_route(&mut index, "ok", json!({"parentRefs": [server_ref("web")]}));
    assert_eq!(web.borrow().http_routes.len(), 1);
    // Made invalid (a regex the proxy could not compile): skipped, counted, and no longer applied.
    apply_route(
        &mut index,
        "ok",
        json!({"parentRefs": [server_ref("web")],
        "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": "(["}}]}]}),
    );
    assert!(web.borrow().http_routes.is_empty());
    assert_eq!(index.metrics().invalid_objects(), 1);

    // An invalid policy (a target kind that does not exist) is skipped and counted too.
    apply_policy(
        &mut index,
        "bad",
        json!({"group": "policy.weft.dev", "kind": "Pod", "name": "web"}),
        json!([]),
    );
    assert_eq!(index.metrics().invalid_objects(), 2);
    assert_eq!(index.metrics().authorization_policies(), 0);
}
