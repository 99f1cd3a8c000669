#![allow(clippy::unwrap_used)]

use super::*;
use crate::check::Status;
use serde_json::json;
use weft_injector::config::ProxyArgs;

fn injector() -> Injector {
    Injector::new(ProxyArgs::default().to_config(None).unwrap())
}

/// A pod as Linkerd's injector leaves it: its proxy and init containers, its volumes and
/// annotations, plus `annotations` of the user's.
fn linkerd_pod(name: &str, annotations: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(
        "linkerd.io/created-by".into(),
        "linkerd/proxy-injector edge-26.8.3".into(),
    );
    all.insert("linkerd.io/proxy-version".into(), "edge-26.8.3".into());
    for (k, v) in annotations {
        all.insert(k.to_string(), (*v).into());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "annotations": all},
        "spec": {
            "initContainers": [{"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy-init:v2.4.9"}],
            "containers": [
                {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3",
                 "ports": [{"name": "linkerd-proxy", "containerPort": 4143}, {"name": "linkerd-admin", "containerPort": 4191}]},
                {"name": "app", "image": "example.com/app:1", "ports": [{"containerPort": 8080}]},
            ],
            "volumes": [{"name": "linkerd-identity-end-entity", "emptyDir": {}}],
        },
    })
}

fn listed(owner: &str, pod: Value) -> ListedPod {
    ListedPod {
        namespace: "shop".to_string(),
        owner: owner.to_string(),
        pod,
    }
}

fn namespaces(annotations: &[(&str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
    let map = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    [("shop".to_string(), map)].into()
}

#[test]
fn pods_linkerd_meshes_are_judged_by_wefts_own_decision() {
    let injector = injector();
    let enabled = namespaces(&[("linkerd.io/inject", "enabled")]);
    // A plain meshed pod: the same under Weft (its Linkerd ports and volumes are not Weft's
    // business).
    let fine = [listed("Deployment/web", linkerd_pod("web-1", &[]))];
    let checks = pods(&injector, &fine, &enabled);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Status::Ok, "{checks:?}");
    assert!(checks[0].message.starts_with("1 pod(s)"), "{checks:?}");

    let pods_of = [
        listed("Deployment/web", linkerd_pod("web-1", &[])),
        // Refused: ingress mode.
        listed(
            "Deployment/ingress",
            linkerd_pod("ingress-1", &[("linkerd.io/inject", "ingress")]),
        ),
        listed(
            "Deployment/ingress",
            linkerd_pod("ingress-2", &[("linkerd.io/inject", "ingress")]),
        ),
        // Warned: an annotation Weft ignores.
        listed(
            "StatefulSet/db",
            linkerd_pod("db-0", &[("config.linkerd.io/proxy-await", "enabled")]),
        ),
        // Not Linkerd's business at all.
        listed(
            "pod/plain",
            json!({"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "app"}]}}),
        ),
    ];
    let checks = pods(&injector, &pods_of, &enabled);
    assert_eq!(
        checks.len(),
        2,
        "one line per owner with a difference: {checks:?}"
    );
    let ingress = &checks[0];
    assert_eq!(ingress.status, Status::Fail);
    assert!(
        ingress.message.starts_with("shop/Deployment/ingress: Weft's webhook would refuse its pods: linkerd.io/inject: \"ingress\""),
        "{ingress:?}"
    );
    let db = &checks[1];
    assert_eq!(db.status, Status::Warn);
    assert!(
        db.message
            .contains("config.linkerd.io/proxy-await is not supported by Weft"),
        "{db:?}"
    );

    // Meshed by Linkerd, but nothing tells Weft to mesh it.
    let checks = pods(&injector, &fine, &namespaces(&[]));
    assert_eq!(checks[0].status, Status::Fail, "{checks:?}");
    assert!(
        checks[0]
            .message
            .contains("Weft would not mesh it (injection not enabled"),
        "{checks:?}"
    );
}

#[test]
fn services_with_opaque_port_names_are_reported() {
    let services_of = vec![
        (
            "shop".to_string(),
            "db".to_string(),
            [(
                "config.linkerd.io/opaque-ports".to_string(),
                "mysql".to_string(),
            )]
            .into(),
        ),
        (
            "shop".to_string(),
            "cache".to_string(),
            [(
                "config.linkerd.io/opaque-ports".to_string(),
                "6379".to_string(),
            )]
            .into(),
        ),
    ];
    let checks = services(&services_of);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].status, Status::Warn);
    assert!(
        checks[0]
            .message
            .starts_with("Service shop/db: config.linkerd.io/opaque-ports: \"mysql\""),
        "{checks:?}"
    );
    assert_eq!(services(&services_of[1..])[0].status, Status::Ok);
}

#[test]
fn linkerd_resources_weft_ignores_are_failures_or_warnings() {
    let count = |kind: &'static str, count: Option<usize>, security: bool| {
        Ok(ResourceCount {
            kind,
            count,
            instead: "do this",
            security,
        })
    };
    let checks = resources(&[
        count("Server.policy.linkerd.io", Some(3), true),
        count("ServiceProfile.linkerd.io", Some(2), false),
        count("EgressNetwork.policy.linkerd.io", None, true),
        count("HTTPRoute.policy.linkerd.io", Some(0), true),
        Err("forbidden (403)".to_string()),
    ]);
    let statuses: Vec<Status> = checks.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Fail,
            Status::Warn,
            Status::Ok,
            Status::Ok,
            Status::Fail
        ]
    );
    assert_eq!(
        checks[0].message,
        "Server.policy.linkerd.io: 3 in the cluster, which Weft does not read"
    );
    assert_eq!(checks[0].fix.as_deref(), Some("do this"));
    assert_eq!(
        checks[2].message,
        "EgressNetwork.policy.linkerd.io: the CRD is not installed"
    );
}
