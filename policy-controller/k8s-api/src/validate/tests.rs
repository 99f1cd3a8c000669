#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{json, Value};

fn server(spec: Value) -> Value {
    json!({ "spec": spec })
}

/// Table: (kind, spec, expected error or None when valid).
fn cases() -> Vec<(&'static str, Value, Option<&'static str>)> {
    vec![
        // Servers.
        ("Server", json!({"podSelector": {}, "port": 8080}), None),
        ("Server", json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": "http", "proxyProtocol": "gRPC"}), None),
        ("Server", json!({"podSelector": {}, "port": 70000}),
            Some("spec.port: 70000 is not a port number (1-65535) or a port name (IANA_SVC_NAME)")),
        ("Server", json!({"podSelector": {}, "port": 0}),
            Some("spec.port: 0 is not a port number (1-65535) or a port name (IANA_SVC_NAME)")),
        ("Server", json!({"podSelector": {}, "port": "Admin_Port"}),
            Some("spec.port: \"Admin_Port\" is not a port number (1-65535) or a port name (IANA_SVC_NAME): only lowercase letters, digits and '-' are allowed")),
        ("Server", json!({"podSelector": {}, "port": "a-very-long-port-name"}),
            Some("spec.port: \"a-very-long-port-name\" is not a port number (1-65535) or a port name (IANA_SVC_NAME): it is longer than 15 characters")),
        ("Server", json!({"podSelector": {}}), Some("spec: missing field `port`")),
        ("Server", json!({"port": 80}), Some("spec: missing field `podSelector`")),
        ("Server", json!({"podSelector": {}, "port": 80, "proxyProtocol": "HTTP/3"}),
            Some("spec.proxyProtocol: unknown variant `HTTP/3`, expected one of `unknown`, `HTTP/1`, `HTTP/2`, `gRPC`, `opaque`, `TLS`")),
        ("Server", json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}, "port": 80}),
            Some("spec.podSelector.matchExpressions[0].values: operator In needs at least one value")),
        ("Server", json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": []}]}, "port": 80}),
            Some("spec.podSelector.matchExpressions[0].values: operator NotIn needs at least one value")),
        ("Server", json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist", "values": ["a"]}]}, "port": 80}),
            Some("spec.podSelector.matchExpressions[0].values: operator DoesNotExist must not have values")),
        ("Server", json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Matches", "values": ["a"]}]}, "port": 80}),
            Some("spec.podSelector.matchExpressions[0].operator: unknown variant `Matches`, expected one of `In`, `NotIn`, `Exists`, `DoesNotExist`")),
        // ServerAuthorizations.
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}), None),
        ("ServerAuthorization", json!({"server": {"selector": {"matchLabels": {"tier": "front"}}},
            "client": {"meshTLS": {"serviceAccounts": [{"name": "api"}, {"name": "ui", "namespace": "front"}]},
                       "networks": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}]}}), None),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"meshTLS": {"identities": ["*"]}}}), None),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"meshTLS": {"unauthenticatedTLS": true}}}), None),
        ("ServerAuthorization", json!({"server": {"name": "web", "selector": {}}, "client": {"unauthenticated": true}}),
            Some("spec.server: set either name or selector, not both")),
        ("ServerAuthorization", json!({"server": {}, "client": {"unauthenticated": true}}),
            Some("spec.server: set name (a Server's name) or selector (over Server labels)")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"unauthenticated": true, "meshTLS": {"identities": ["*"]}}}),
            Some("spec.client: unauthenticated: true cannot be combined with meshTLS")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {}}),
            Some("spec.client: set unauthenticated: true or meshTLS")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"meshTLS": {"identities": []}}}),
            Some("spec.client.meshTLS.identities: must not be empty (use [\"*\"] for any identity)")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"meshTLS": {}}}),
            Some("spec.client.meshTLS: set identities, serviceAccounts or unauthenticatedTLS: true")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"meshTLS": {"unauthenticatedTLS": true, "identities": ["a"]}}}),
            Some("spec.client.meshTLS: unauthenticatedTLS: true cannot be combined with identities or serviceAccounts")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"unauthenticated": true, "networks": [{"cidr": "10.0.0.0/33"}]}}),
            Some("spec.client.networks[0].cidr: \"10.0.0.0/33\" is not a CIDR (e.g. \"10.0.0.0/8\" or \"fd00::/8\") or an IP address")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"unauthenticated": true, "networks": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}]}}),
            Some("spec.client.networks[0].except[0]: 11.0.0.0/16 is not inside cidr 10.0.0.0/8")),
        ("ServerAuthorization", json!({"server": {"name": "web"}, "client": {"unauthenticated": true, "networks": []}}),
            Some("spec.client.networks: must not be empty (omit it to allow all networks)")),
        ("ServerAuthorization", json!({"server": {"selector": {"matchExpressions": [{"key": "x", "operator": "Exists", "values": []}]}}, "client": {"unauthenticated": true}}),
            Some("spec.server.selector.matchExpressions[0].values: operator Exists must not have values")),
        // AuthorizationPolicies, in namespace "shop".
        ("AuthorizationPolicy", json!({"targetRef": {"group": "policy.weft.dev", "kind": "Server", "name": "web"},
            "requiredAuthenticationRefs": [{"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": "billing"}]}), None),
        ("AuthorizationPolicy", json!({"targetRef": {"kind": "Namespace", "name": "shop"}}), None),
        ("AuthorizationPolicy", json!({"targetRef": {"group": "policy.weft.dev", "kind": "Deployment", "name": "web"}}),
            Some("spec.targetRef: \"Deployment\" in group \"policy.weft.dev\" is not a target Weft knows; accepted: {group: policy.weft.dev, kind: Server}, {group: gateway.networking.k8s.io, kind: HTTPRoute} or {group: \"\", kind: Namespace}")),
        ("AuthorizationPolicy", json!({"targetRef": {"kind": "Namespace", "name": "ops"}}),
            Some("spec.targetRef.name: a policy can target only its own namespace (\"shop\"), not \"ops\"")),
        ("AuthorizationPolicy", json!({"targetRef": {"group": "policy.weft.dev", "kind": "Server", "name": "web"},
            "requiredAuthenticationRefs": [{"kind": "Secret", "name": "x"}]}),
            Some("spec.requiredAuthenticationRefs[0]: \"Secret\" in group \"\" is not an authentication Weft knows; accepted: {group: policy.weft.dev, kind: MeshTLSAuthentication}, {group: policy.weft.dev, kind: NetworkAuthentication} or {group: \"\", kind: ServiceAccount}")),
        ("AuthorizationPolicy", json!({"requiredAuthenticationRefs": []}), Some("spec: missing field `targetRef`")),
        // MeshTLSAuthentications and NetworkAuthentications.
        ("MeshTLSAuthentication", json!({"identityRefs": [{"kind": "ServiceAccount", "name": "billing"}]}), None),
        ("MeshTLSAuthentication", json!({}),
            Some("spec: set identities (mesh identities, `*` for any) or identityRefs (ServiceAccounts or Namespaces); an authentication with neither authenticates nobody")),
        ("NetworkAuthentication", json!({"networks": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]}), None),
        ("NetworkAuthentication", json!({"networks": [{"cidr": "10.0.0.300/8"}]}),
            Some("spec.networks[0].cidr: \"10.0.0.300/8\" is not a CIDR (e.g. \"10.0.0.0/8\" or \"fd00::/8\") or an IP address")),
        ("NetworkAuthentication", json!({"networks": []}),
            Some("spec.networks: must list at least one network (e.g. {cidr: 10.0.0.0/8})")),
        // Other kinds are not ours to judge.
        ("ConfigMap", json!({"anything": true}), None),
    ]
}

#[test]
fn validation_table() {
    let mut failures = Vec::new();
    for (kind, spec, expected) in cases() {
        let got = validate_object(kind, "shop", &server(spec.clone()).to_string())
            .err()
            .map(|e| e.to_string());
        if got.as_deref() != expected {
            failures.push(format!(
                "{kind} {spec}\n  expected: {expected:?}\n  got:      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_spec_is_named() {
    let err = validate_object("Server", "shop", &json!({}).to_string()).unwrap_err();
    assert_eq!(err.to_string(), "spec: is required");
}

fn request(operation: &str, kind: &str, group: &str, object: Option<Value>) -> RequestIn<'static> {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": {"group": group, "version": "v1beta1", "kind": kind},
            "resource": {"group": group, "version": "v1beta1", "resource": "things"},
            "name": "web",
            "namespace": "emojivoto",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
    .to_string();
    // The request borrows the object's text from the body; a test can keep the body forever.
    let body: &'static str = Box::leak(body.into_boxed_str());
    let review: ReviewIn<'static> = serde_json::from_str(body).unwrap();
    review.request.unwrap()
}

fn object(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "emojivoto"},
        "spec": spec,
    })
}

#[test]
fn review_denies_invalid_server_with_field_message() {
    let req = request(
        "CREATE",
        "Server",
        GROUP,
        Some(object("Server", json!({"podSelector": {}, "port": 70000}))),
    );
    let resp = review(&req);
    assert!(!resp.allowed);
    assert_eq!(resp.uid, req.uid);
    assert_eq!(
        resp.result.message,
        "spec.port: 70000 is not a port number (1-65535) or a port name (IANA_SVC_NAME)"
    );
}

#[test]
fn review_allows_valid_objects_on_create_and_update() {
    for op in ["CREATE", "UPDATE"] {
        let req = request(
            op,
            "Server",
            GROUP,
            Some(object("Server", json!({"podSelector": {}, "port": 80}))),
        );
        assert!(review(&req).allowed, "{op}");
        let req = request(
            op,
            "ServerAuthorization",
            GROUP,
            Some(object(
                "ServerAuthorization",
                json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}),
            )),
        );
        assert!(review(&req).allowed, "{op}");
    }
}

#[test]
fn review_denies_invalid_update() {
    let bad = object(
        "ServerAuthorization",
        json!({"server": {"name": "web"}, "client": {"meshTLS": {"identities": []}}}),
    );
    let resp = review(&request("UPDATE", "ServerAuthorization", GROUP, Some(bad)));
    assert!(!resp.allowed);
    assert!(
        resp.result
            .message
            .starts_with("spec.client.meshTLS.identities:"),
        "{}",
        resp.result.message
    );
}

#[test]
fn review_allows_delete_and_foreign_kinds_unchanged() {
    let resp = review(&request("DELETE", "Server", GROUP, None));
    assert!(resp.allowed);
    assert!(resp.patch.is_none());
    let bad = object("Server", json!({"port": 70000}));
    let resp = review(&request("CREATE", "Server", "other.example.com", Some(bad)));
    assert!(resp.allowed);
    let resp = review(&request(
        "CREATE",
        "Pod",
        "",
        Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})),
    ));
    assert!(resp.allowed);
}

#[test]
fn review_denies_create_without_object() {
    let resp = review(&request("CREATE", "Server", GROUP, None));
    assert!(!resp.allowed);
    assert_eq!(
        resp.result.message,
        "CREATE Server: the admission request carries no object"
    );
}

#[test]
fn review_judges_http_routes_of_weft_servers_only() {
    let route = |parents: Value, rules: Value| {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "emojivoto"},
            "spec": {"parentRefs": parents, "rules": rules},
        })
    };
    let server = json!([{"group": "policy.weft.dev", "kind": "Server", "name": "web"}]);
    let gateway = json!([{"name": "public"}]);
    let bad_rules = json!([{"filters": [{"type": "URLRewrite", "urlRewrite": {}}]}]);
    let good_rules =
        json!([{"matches": [{"path": {"type": "Exact", "value": "/health"}, "method": "GET"}]}]);

    let allowed = review(&request(
        "CREATE",
        "HTTPRoute",
        GATEWAY_GROUP,
        Some(route(server.clone(), good_rules)),
    ));
    assert!(allowed.allowed, "{:?}", allowed.result);

    let denied = review(&request(
        "UPDATE",
        "HTTPRoute",
        GATEWAY_GROUP,
        Some(route(server, bad_rules.clone())),
    ));
    assert!(!denied.allowed);
    assert_eq!(
        denied.result.message,
        "spec.rules[0].filters[0].type: UrlRewrite is not a filter the proxy applies to inbound requests (accepted: RequestHeaderModifier, RequestRedirect)"
    );

    // Another implementation's route: not Weft's to judge, whatever its rules.
    let foreign = review(&request(
        "CREATE",
        "HTTPRoute",
        GATEWAY_GROUP,
        Some(route(gateway, bad_rules)),
    ));
    assert!(foreign.allowed);
    // Other Gateway API kinds pass.
    let grpc = review(&request(
        "CREATE",
        "GRPCRoute",
        GATEWAY_GROUP,
        Some(json!({"spec": {}})),
    ));
    assert!(grpc.allowed);
}
