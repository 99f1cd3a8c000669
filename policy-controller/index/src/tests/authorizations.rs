use super::*;
use weft_policy_k8s_api::Cidr;

fn names(rx: &watch::Receiver<InboundPolicy>) -> Vec<String> {
    rx.borrow()
        .authorizations
        .iter()
        .map(|a| a.name.clone())
        .collect()
}

fn setup() -> Index {
    let mut index = mk_index(DefaultPolicy::AllUnauthenticated);
    apply_pod(
        &mut index,
        mk_pod("ns", "web", &[("app", "web")], &[(Some("http"), 8080)]),
    );
    apply_pod(
        &mut index,
        mk_pod("ns", "db", &[("app", "db")], &[(Some("pg"), 5432)]),
    );
    let mut web = mk_server("ns", "web", &[("app", "web")], json!("http"), "HTTP/1", 1);
    web.metadata.labels = Some([("tier".to_string(), "front".to_string())].into());
    apply_server(&mut index, web);
    apply_server(
        &mut index,
        mk_server("ns", "db", &[("app", "db")], json!("pg"), "opaque", 1),
    );
    index
}

#[test]
fn authorization_by_server_name() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    let mut db = watch(&index, "ns", "db", 5432);
    db.mark_unchanged();
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "web-public",
            json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}),
        ),
    );
    assert_eq!(names(&web), ["ServerAuthorization/web-public"]);
    assert_eq!(
        serde_json::to_value(&web.borrow().authorizations[0]).unwrap(),
        json!({
            "name": "ServerAuthorization/web-public",
            "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}],
            "authentication": {"kind": "unauthenticated"},
        })
    );
    assert!(!db.has_changed().unwrap(), "the db Server is not targeted");
    assert!(names(&db).is_empty());
}

#[test]
fn authorization_by_server_selector_with_mesh_tls_and_networks() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "front-clients",
            json!({
                "server": {"selector": {"matchLabels": {"tier": "front"}}},
                "client": {
                    "meshTLS": {"serviceAccounts": [{"name": "ui"}, {"name": "api", "namespace": "other"}]},
                    "networks": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}],
                },
            }),
        ),
    );
    let policy = web.borrow().clone();
    assert_eq!(policy.authorizations.len(), 1);
    let authz = &policy.authorizations[0];
    assert_eq!(
        authz.networks,
        vec![NetworkMatch {
            cidr: "10.0.0.0/8".parse::<Cidr>().unwrap(),
            except: vec!["10.9.0.0/16".parse::<Cidr>().unwrap()],
        }]
    );
    assert_eq!(
        authz.authentication,
        Authentication::MeshTls {
            identities: vec![],
            service_accounts: vec![
                ServiceAccount {
                    name: "api".into(),
                    namespace: "other".into()
                },
                ServiceAccount {
                    name: "ui".into(),
                    namespace: "ns".into()
                },
            ],
        }
    );
    assert!(names(&watch(&index, "ns", "db", 5432)).is_empty());
}

#[test]
fn several_authorizations_are_sorted_and_removal_updates() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "zeta",
            json!({"server": {"name": "web"}, "client": {"meshTLS": {"identities": ["*"]}}}),
        ),
    );
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "alpha",
            json!({"server": {"name": "web"}, "client": {"meshTLS": {"unauthenticatedTLS": true}}}),
        ),
    );
    assert_eq!(
        names(&web),
        ["ServerAuthorization/alpha", "ServerAuthorization/zeta"]
    );
    assert_eq!(
        web.borrow().authorizations[0].authentication,
        Authentication::TlsUnauthenticated
    );
    assert_eq!(index.metrics().authorizations(), 2);

    IndexNamespacedResource::<ServerAuthorization>::delete(&mut index, "ns".into(), "zeta".into());
    assert_eq!(names(&web), ["ServerAuthorization/alpha"]);

    // Retargeting an authorization moves it between Servers.
    let db = watch(&index, "ns", "db", 5432);
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "alpha",
            json!({"server": {"name": "db"}, "client": {"meshTLS": {"unauthenticatedTLS": true}}}),
        ),
    );
    assert!(names(&web).is_empty());
    assert_eq!(names(&db), ["ServerAuthorization/alpha"]);
    assert_eq!(index.metrics().authorizations(), 1);
}

#[test]
fn authorizations_in_other_namespaces_do_not_apply() {
    let mut index = setup();
    let mut web = watch(&index, "ns", "web", 8080);
    web.mark_unchanged();
    apply_authz(
        &mut index,
        mk_authz(
            "other",
            "web",
            json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}),
        ),
    );
    assert!(!web.has_changed().unwrap());
    assert!(names(&web).is_empty());
}

#[test]
fn authorizations_do_not_affect_default_ports() {
    let mut index = setup();
    let mut free = watch(&index, "ns", "web", 9000);
    free.mark_unchanged();
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "all",
            json!({"server": {"selector": {}}, "client": {"unauthenticated": true}}),
        ),
    );
    assert!(!free.has_changed().unwrap());
    assert_eq!(names(&free), ["default/all-unauthenticated"]);
}

#[test]
fn an_invalid_authorization_is_skipped() {
    let mut index = setup();
    let web = watch(&index, "ns", "web", 8080);
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "a",
            json!({"server": {"name": "web"}, "client": {"unauthenticated": true}}),
        ),
    );
    assert_eq!(names(&web), ["ServerAuthorization/a"]);
    // Both unauthenticated and meshTLS: invalid, so the authorization no longer applies.
    apply_authz(
        &mut index,
        mk_authz(
            "ns",
            "a",
            json!({"server": {"name": "web"}, "client": {"unauthenticated": true, "meshTLS": {"identities": ["x"]}}}),
        ),
    );
    assert!(names(&web).is_empty());
    assert_eq!(index.metrics().invalid_objects(), 1);
    assert_eq!(index.metrics().authorizations(), 0);
}
