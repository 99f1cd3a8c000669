//! Per-route authorization, for real: a Server's HTTPRoutes (Gateway API) replace its default
//! route in the policy Weft serves, each route authorized by its own AuthorizationPolicies
//! (MeshTLSAuthentication by service account, NetworkAuthentication with an `except`). The web
//! pod's linkerd2-proxy is the judge: 403 for a client a route does not authorize, 404 for a
//! request no route matches, and its own metrics name the route and the policy.
//!
//! Requests are the host's `curl` in a client pod's network namespace (`nsenter -n`), through the
//! client's proxy, to the web Service (as in `node_mtls`).

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::{Api, ListParams, PostParams};
use std::time::{Duration, Instant};
use weft_e2e::{
    mesh::{
        app_pod, create_http_route, create_policy, create_service, http_request_from, pid_of,
        pod_ip, proxy_metrics, run_pod, service, service_account, wait_for_request_answer,
    },
    node, resources,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "routes::http_routes_authorize_per_route_on_the_proxy",
    http_routes_authorize_per_route_on_the_proxy,
)];

/// The node's pod network (`POD_CIDR` in bin/_node).
const POD_CIDR: &str = "10.251.0.0/24";

/// The test app with a document tree of its own, so every route of the test has something to
/// answer: `GET /health`, `/reports`, `/admin` and `/` (static files, 200), `POST
/// /refunds/new.cgi` (a CGI script, 200; BusyBox httpd answers POST only for CGI) and the probe
/// path `/healthz`. Any 403 or 404 on those is therefore the proxy's, not the app's.
fn web_deployment(image: &str) -> Deployment {
    let script = r#"set -e
W=/tmp/www
busybox mkdir -p $W/refunds
echo ok >$W/healthz
echo healthy >$W/health
echo reports >$W/reports
echo admin >$W/admin
echo "weft test app" >$W/index.html
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho refunded\n' >$W/refunds/new.cgi
busybox chmod 755 $W/refunds/new.cgi
echo '*.cgi:/bin/sh' >/tmp/httpd.conf
echo "weft test app: serving $W on port 8080"
exec busybox httpd -f -v -p 8080 -h $W -c /tmp/httpd.conf"#;
    let mut pod = app_pod("web", image, "web", &[]);
    if let Some(app) = pod.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        app.command = Some(vec!["/bin/sh".into(), "-c".into(), script.into()]);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod.spec},
        },
    }))
    .expect("the literal Deployment is a valid Deployment")
}

/// An HTTPRoute `name` on Server `web-http` with one rule matching `method` and `path`
/// (`{"type": "Exact"|"PathPrefix", "value": ...}`).
fn route(name: &str, method: &str, path: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"group": "policy.weft.dev", "kind": "Server", "name": "web-http"}],
            "rules": [{"matches": [{"path": path, "method": method}]}],
        },
    })
}

/// An AuthorizationPolicy `name` on HTTPRoute `route` requiring `authentications` (none: anyone).
fn route_policy(name: &str, route: &str, authentications: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
            "requiredAuthenticationRefs": authentications,
        },
    })
}

/// One client of the test: a name for messages and the pid whose network namespace it is.
struct Client {
    name: &'static str,
    pid: u32,
}

/// Sends `method path` from `client` once and checks the status is `want`.
fn expect(client: &Client, method: &str, base: &str, path: &str, want: u16) -> Result<()> {
    let got = http_request_from(client.pid, method, &format!("{base}{path}"))?;
    ensure!(
        got == Some(want),
        "{method} {path} from {} must answer {want}, got {got:?}",
        client.name
    );
    eprintln!("routes: {method} {path} from {}: {want}", client.name);
    Ok(())
}

/// The lines of the web proxy's `metric` samples carrying every one of `labels`.
fn samples<'m>(metrics: &'m str, metric: &str, labels: &[String]) -> Vec<&'m str> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label.as_str())))
        .collect()
}

fn http_routes_authorize_per_route_on_the_proxy(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        node::ensure_gateway_api_watched(&h.cluster).await?;
        // The suite installs the chart with its default policy, all-unauthenticated; it applies
        // to ports no Server selects (here the proxies' admin ports, which the host scrapes).
        // Web's HTTP port gets a Server with no Server-level authorization, so its routes alone
        // decide.
        let ns =
            resources::namespace(&client, "routes", &[("weft.dev/inject", "enabled")], &[]).await?;
        for sa in ["web", "billing", "other"] {
            service_account(&client, &ns, sa).await?;
        }
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &web_deployment(&h.images.test_app))
            .await?;
        let web_ip = create_service(&client, &ns, &service("web", 80)).await?;
        let base = format!("http://{web_ip}");
        let billing_pod = run_pod(
            &h.cluster,
            &client,
            &ns,
            &app_pod("billing", &h.images.test_app, "billing", &[]),
        )
        .await?;
        let other_pod = run_pod(
            &h.cluster,
            &client,
            &ns,
            &app_pod("other", &h.images.test_app, "other", &[]),
        )
        .await?;
        node::wait_deployment_available(&client, &ns, "web", Duration::from_secs(120)).await?;
        let billing = Client {
            name: "billing",
            pid: pid_of(&h.cluster, &billing_pod, "app")?,
        };
        let other = Client {
            name: "other",
            pid: pid_of(&h.cluster, &other_pod, "app")?,
        };
        let other_ip = pod_ip(&other_pod)?;

        create_policy(
            &client,
            &ns,
            "Server",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web-http"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
            }),
        )
        .await?;
        // health: GET /health, for anyone (a policy with no required authentication).
        create_http_route(
            &client,
            &ns,
            route(
                "health",
                "GET",
                serde_json::json!({"type": "Exact", "value": "/health"}),
            ),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "AuthorizationPolicy",
            route_policy("health-anyone", "health", serde_json::json!([])),
        )
        .await?;
        // refunds: POST /refunds..., for the billing service account only, by the identity of
        // its client certificate (mutual TLS between the proxies).
        create_http_route(
            &client,
            &ns,
            route(
                "refunds",
                "POST",
                serde_json::json!({"type": "PathPrefix", "value": "/refunds"}),
            ),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "MeshTLSAuthentication",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "MeshTLSAuthentication",
                "metadata": {"name": "billing"},
                "spec": {"identityRefs": [{"kind": "ServiceAccount", "name": "billing"}]},
            }),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "AuthorizationPolicy",
            route_policy(
                "refunds-billing",
                "refunds",
                serde_json::json!([{
                    "group": "policy.weft.dev",
                    "kind": "MeshTLSAuthentication",
                    "name": "billing",
                }]),
            ),
        )
        .await?;
        // reports: GET /reports, decided by source address alone. Its policy requires only a
        // NetworkAuthentication (no mesh authentication): the pod network except `other`'s pod
        // IP. Both clients are meshed and run in the pod network, so `other` is refused by the
        // `except` and by nothing else; billing, one address away, is let through.
        create_http_route(
            &client,
            &ns,
            route(
                "reports",
                "GET",
                serde_json::json!({"type": "Exact", "value": "/reports"}),
            ),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "NetworkAuthentication",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "NetworkAuthentication",
                "metadata": {"name": "pods-but-other"},
                "spec": {"networks": [{"cidr": POD_CIDR, "except": [format!("{other_ip}/32")]}]},
            }),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "AuthorizationPolicy",
            route_policy(
                "reports-pod-network",
                "reports",
                serde_json::json!([{
                    "group": "policy.weft.dev",
                    "kind": "NetworkAuthentication",
                    "name": "pods-but-other",
                }]),
            ),
        )
        .await?;

        // The last object's effect, seen by the proxy; then everything else is settled too.
        let settled = wait_for_request_answer(
            billing.pid,
            "GET",
            &format!("{base}/reports"),
            |a| a == Some(200),
            "billing on the reports route",
        )
        .await?;
        eprintln!("routes: the routes and policies in effect {settled:?} after the last create");
        expect(&billing, "GET", &base, "/health", 200)?;
        expect(&other, "GET", &base, "/health", 200)?;
        expect(&billing, "POST", &base, "/refunds/new.cgi", 200)?;
        expect(&other, "POST", &base, "/refunds/new.cgi", 403)?;
        // The app serves /admin and / (200): a 404 is the proxy's, for a request no route matches.
        expect(&billing, "GET", &base, "/admin", 404)?;
        expect(&billing, "GET", &base, "/", 404)?;
        // A route matches method and path: GET on the refunds prefix is no route's.
        expect(&billing, "GET", &base, "/refunds/new.cgi", 404)?;
        expect(&billing, "GET", &base, "/reports", 200)?;
        expect(&other, "GET", &base, "/reports", 403)?;

        // A route created while the pods run takes effect within a second: its policy first
        // (a policy on a route that does not exist yet authorizes nothing), then the route; from
        // the create call's return, /admin goes from 404 (no route) to 200.
        create_policy(
            &client,
            &ns,
            "AuthorizationPolicy",
            route_policy("admin-anyone", "admin", serde_json::json!([])),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        expect(&billing, "GET", &base, "/admin", 404)?;
        create_http_route(
            &client,
            &ns,
            route(
                "admin",
                "GET",
                serde_json::json!({"type": "Exact", "value": "/admin"}),
            ),
        )
        .await?;
        let created = Instant::now();
        let url = format!("{base}/admin");
        let mut tries = 0;
        let took = loop {
            tries += 1;
            let last = http_request_from(billing.pid, "GET", &url)?;
            if last == Some(200) {
                break created.elapsed();
            }
            ensure!(
                created.elapsed() < Duration::from_secs(20),
                "GET /admin from billing still answered {last:?} 20 s after the admin HTTPRoute \
                 was created"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!(
            "routes: a new HTTPRoute took effect {took:?} after its create call returned \
             ({tries} requests; the one before answered 404)"
        );
        ensure!(
            took < Duration::from_secs(1),
            "a new HTTPRoute must take effect on the proxy within a second, took {took:?}"
        );
        // The other routes are unchanged by the new one.
        expect(&other, "POST", &base, "/refunds/new.cgi", 403)?;
        expect(&other, "GET", &base, "/health", 200)?;

        // The web proxy's own metrics: allowed and denied requests, by route and policy.
        let web_pods = Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels("app=web"))
            .await?;
        let web_pod_ip = web_pods.items.first().map(pod_ip).context("no web pod")??;
        let metrics = proxy_metrics(&web_pod_ip)?;
        let identity = |sa: &str| format!("{sa}.{ns}.serviceaccount.identity.weft.cluster.local");
        let checks = [
            (
                "inbound_http_authz_allow_total",
                vec![
                    "route_name=\"refunds\"".to_string(),
                    "authz_name=\"refunds-billing\"".to_string(),
                    format!("client_id=\"{}\"", identity("billing")),
                ],
            ),
            (
                "inbound_http_authz_deny_total",
                vec![
                    "route_name=\"refunds\"".to_string(),
                    format!("client_id=\"{}\"", identity("other")),
                ],
            ),
            (
                "inbound_http_authz_allow_total",
                vec![
                    "route_name=\"reports\"".to_string(),
                    "authz_name=\"reports-pod-network\"".to_string(),
                ],
            ),
            (
                "inbound_http_authz_deny_total",
                vec![
                    "route_name=\"reports\"".to_string(),
                    format!("client_id=\"{}\"", identity("other")),
                ],
            ),
        ];
        for (metric, labels) in &checks {
            let found = samples(&metrics, metric, labels);
            ensure!(
                !found.is_empty(),
                "the web proxy's metrics have no {metric} with {labels:?}:\n{}",
                metrics
                    .lines()
                    .filter(|l| l.starts_with("inbound_http_authz"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            eprintln!("routes: web proxy: {}", found[0]);
        }

        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}
