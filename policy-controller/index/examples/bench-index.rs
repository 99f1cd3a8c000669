//! Builds a policy index of 50,000 pods, 5,000 Servers, 5,000 ServerAuthorizations, 5,000
//! HTTPRoutes and 10,000 AuthorizationPolicies (with a MeshTLSAuthentication and a
//! NetworkAuthentication per namespace) over 100 namespaces, then measures: RSS, time to apply
//! everything, index time of one Server update and of one HTTPRoute update, and the delay from an
//! update to the watch notification (what feeds each `WatchPort` stream). A measurement, not a
//! test.
//!
//! cargo run --release -p weft-policy-index --example bench-index

#![allow(clippy::unwrap_used)]

use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, Pod, PodSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    chrono::{TimeZone, Utc},
};
use kube::core::DeserializeGuard;
use kubert::index::IndexNamespacedResource;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::{Duration, Instant};
use weft_policy_index::{ClusterSettings, DefaultPolicy, Index, IndexMetrics};
use weft_policy_k8s_api::{
    AuthorizationPolicy, HTTPRoute, MeshTLSAuthentication, NetworkAuthentication, Server,
    ServerAuthorization,
};

const NAMESPACES: usize = 100;
const PODS: usize = 50_000;
const SERVERS: usize = 5_000;
const UPDATES: usize = 1_000;

const PODS_PER_NS: usize = PODS / NAMESPACES;
const SERVERS_PER_NS: usize = SERVERS / NAMESPACES;

fn ns(n: usize) -> String {
    format!("ns-{n}")
}

fn pod(n: usize, i: usize) -> Pod {
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.into()),
        container_port: number,
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            namespace: Some(ns(n)),
            name: Some(format!("pod-{i}")),
            labels: Some(
                [
                    ("app".to_string(), format!("app-{}", i % SERVERS_PER_NS)),
                    ("pod-template-hash".to_string(), "5d8f7c9b4".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ports: Some(vec![port("http", 8080), port("admin", 9990)]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn server(n: usize, j: usize, protocol: &str) -> Server {
    let port = if j.is_multiple_of(2) {
        json!("http")
    } else {
        json!(8080)
    };
    let mut server: Server = serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"namespace": ns(n), "name": format!("srv-{j}"), "labels": {"team": format!("t-{}", j % 5)}},
        "spec": {"podSelector": {"matchLabels": {"app": format!("app-{j}")}}, "port": port, "proxyProtocol": protocol},
    }))
    .unwrap();
    let created = i64::try_from(n * SERVERS_PER_NS + j).unwrap();
    server.metadata.creation_timestamp = Some(Time(Utc.timestamp_opt(created, 0).unwrap()));
    server
}

fn authorization(n: usize, j: usize) -> ServerAuthorization {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "ServerAuthorization",
        "metadata": {"namespace": ns(n), "name": format!("authz-{j}")},
        "spec": {
            "server": {"name": format!("srv-{j}")},
            "client": {"meshTLS": {"serviceAccounts": [{"name": format!("client-{j}")}]}},
        },
    }))
    .unwrap()
}

/// The HTTPRoute of Server `srv-j`; `version` changes its path prefix.
fn route(n: usize, j: usize, version: usize) -> HTTPRoute {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"namespace": ns(n), "name": format!("route-{j}")},
        "spec": {
            "parentRefs": [{"group": "policy.weft.dev", "kind": "Server", "name": format!("srv-{j}")}],
            "rules": [
                {"matches": [{"path": {"type": "Exact", "value": "/health"}, "method": "GET"}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": format!("/api/v{version}")},
                    "headers": [{"name": "x-tenant", "value": "a"}]}]},
            ],
        },
    }))
    .unwrap()
}

/// Two policies per route: `k` 0 requires the namespace's MeshTLSAuthentication and
/// NetworkAuthentication, `k` 1 a service account.
fn route_policy(n: usize, j: usize, k: usize) -> AuthorizationPolicy {
    let authns = if k == 0 {
        json!([
            {"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": "clients"},
            {"group": "policy.weft.dev", "kind": "NetworkAuthentication", "name": "pods"},
        ])
    } else {
        json!([{"kind": "ServiceAccount", "name": format!("client-{j}")}])
    };
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"namespace": ns(n), "name": format!("route-{j}-{k}")},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": format!("route-{j}")},
            "requiredAuthenticationRefs": authns,
        },
    }))
    .unwrap()
}

fn authentications(n: usize) -> (MeshTLSAuthentication, NetworkAuthentication) {
    let meta = |name: &str| json!({"namespace": ns(n), "name": name});
    (
        serde_json::from_value(json!({
            "apiVersion": "policy.weft.dev/v1beta1", "kind": "MeshTLSAuthentication",
            "metadata": meta("clients"),
            "spec": {"identityRefs": [{"kind": "ServiceAccount", "name": "*"}]},
        }))
        .unwrap(),
        serde_json::from_value(json!({
            "apiVersion": "policy.weft.dev/v1beta1", "kind": "NetworkAuthentication",
            "metadata": meta("pods"),
            "spec": {"networks": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}]},
        }))
        .unwrap(),
    )
}

/// Waits for the `expected` notifications an update at `t0` causes, asserting that each comes
/// from a pod of Server `srv-j` in namespace `n` (pods `pod-i` with `i % SERVERS_PER_NS == j`),
/// and returns each one's delay.
async fn notifications(
    notify_rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, usize, Instant)>,
    expected: usize,
    (n, j): (usize, usize),
    t0: Instant,
) -> Vec<Duration> {
    let mut delays = Vec::with_capacity(expected);
    for _ in 0..expected {
        let (got_n, got_i, at) = tokio::time::timeout(Duration::from_secs(5), notify_rx.recv())
            .await
            .expect("a notification within 5s")
            .unwrap();
        assert_eq!(
            (got_n, got_i % SERVERS_PER_NS),
            (n, j),
            "only the pods of the updated Server (or its route's) are notified"
        );
        delays.push(at - t0);
    }
    delays
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rss_start = rss_mib();
    let index = Index::shared(
        ClusterSettings {
            mesh: weft_core::Mesh::new("weft", "cluster.local"),
            cluster_domain: "cluster.local".to_string(),
            default_opaque_ports: weft_core::PortList::default(),
            default_policy: DefaultPolicy::AllUnauthenticated,
            cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
        },
        IndexMetrics::register(&mut Registry::default()),
    );

    // Pods first, then policy objects, so every Server has pods to resolve against. Objects are
    // built one at a time (as a watch delivers them) and only the index work is timed.
    let mut apply_all = Duration::ZERO;
    {
        let mut index = index.write();
        for n in 0..NAMESPACES {
            for i in 0..PODS_PER_NS {
                let pod = pod(n, i);
                let t0 = Instant::now();
                index.apply(pod);
                apply_all += t0.elapsed();
            }
        }
        for n in 0..NAMESPACES {
            for j in 0..SERVERS_PER_NS {
                let server = server(n, j, "HTTP/1");
                let t0 = Instant::now();
                index.apply(server);
                apply_all += t0.elapsed();
            }
        }
        for n in 0..NAMESPACES {
            for j in 0..SERVERS_PER_NS {
                let authz = authorization(n, j);
                let t0 = Instant::now();
                index.apply(authz);
                apply_all += t0.elapsed();
            }
        }
        for n in 0..NAMESPACES {
            let (mesh_tls, network) = authentications(n);
            let t0 = Instant::now();
            index.apply(DeserializeGuard(Ok(mesh_tls)));
            index.apply(DeserializeGuard(Ok(network)));
            apply_all += t0.elapsed();
            for j in 0..SERVERS_PER_NS {
                let route = route(n, j, 0);
                let policies = [route_policy(n, j, 0), route_policy(n, j, 1)];
                let t0 = Instant::now();
                IndexNamespacedResource::<HTTPRoute>::apply(&mut *index, route);
                for policy in policies {
                    index.apply(DeserializeGuard(Ok(policy)));
                }
                apply_all += t0.elapsed();
            }
        }
    }
    let rss_index = rss_mib();
    {
        let index = index.read();
        let m = index.metrics();
        assert_eq!(m.pods() as usize, PODS);
        assert_eq!(m.servers() as usize, SERVERS);
        assert_eq!(m.conflicted_ports(), 0);
        assert_eq!(m.http_routes() as usize, SERVERS);
        assert_eq!(m.authorization_policies() as usize, 2 * SERVERS);
        assert_eq!(m.invalid_objects(), 0);
    }

    // Server updates with nobody watching: the index's own work.
    let unwatched: Vec<Duration> = (0..UPDATES)
        .map(|u| {
            // HTTP either way, so the HTTPRoutes keep applying for the route updates below.
            let protocol = if (u / NAMESPACES).is_multiple_of(2) {
                "HTTP/2"
            } else {
                "HTTP/1"
            };
            let update = server((u * 37) % NAMESPACES, (u * 13) % SERVERS_PER_NS, protocol);
            let t0 = Instant::now();
            index.write().apply(update);
            t0.elapsed()
        })
        .collect();

    // One watcher task per pod on port 8080 (50,000 watches), as if every proxy were connected.
    let (notify_tx, mut notify_rx) =
        tokio::sync::mpsc::unbounded_channel::<(usize, usize, Instant)>();
    for n in 0..NAMESPACES {
        for i in 0..PODS_PER_NS {
            let mut rx = index
                .read()
                .pod_port_policy(&ns(n), &format!("pod-{i}"), 8080)
                .unwrap();
            let tx = notify_tx.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    rx.borrow_and_update();
                    if tx.send((n, i, Instant::now())).is_err() {
                        return;
                    }
                }
            });
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_watching = rss_mib();

    // HTTPRoute updates that change the policy of the Server's pods (a new path prefix).
    let expected = PODS_PER_NS / SERVERS_PER_NS; // pods selected by one Server
    let mut route_index_times = Vec::with_capacity(UPDATES);
    let mut route_notify_times = Vec::with_capacity(UPDATES * expected);
    for u in 0..UPDATES {
        let n = (u * 37) % NAMESPACES;
        let j = (u * 13) % SERVERS_PER_NS;
        let update = route(n, j, u + 1);
        let t0 = Instant::now();
        IndexNamespacedResource::<HTTPRoute>::apply(&mut *index.write(), update);
        route_index_times.push(t0.elapsed());
        route_notify_times.extend(notifications(&mut notify_rx, expected, (n, j), t0).await);
    }

    // Server updates that really change the policy (protocol flips), spread over namespaces.
    let mut index_times = Vec::with_capacity(UPDATES);
    let mut notify_times = Vec::with_capacity(UPDATES * PODS_PER_NS / SERVERS_PER_NS);
    for u in 0..UPDATES {
        let n = (u * 37) % NAMESPACES;
        let j = (u * 13) % SERVERS_PER_NS;
        let protocol = if (u / NAMESPACES).is_multiple_of(2) {
            "HTTP/2"
        } else {
            "opaque"
        };
        let update = server(n, j, protocol);
        let t0 = Instant::now();
        index.write().apply(update);
        index_times.push(t0.elapsed());
        notify_times.extend(notifications(&mut notify_rx, expected, (n, j), t0).await);
    }
    // Nothing else was woken.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), notify_rx.recv())
            .await
            .is_err(),
        "unrelated watchers were woken"
    );

    println!(
        "machine: {} CPUs (available_parallelism)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "objects: {PODS} pods (2 named ports each), {SERVERS} Servers, {SERVERS} ServerAuthorizations, \
         {SERVERS} HTTPRoutes, {} AuthorizationPolicies, {} authentications, {NAMESPACES} namespaces",
        2 * SERVERS,
        2 * NAMESPACES
    );
    println!("apply everything: {apply_all:?}");
    println!(
        "RSS: start {rss_start:.1} MiB, index built {rss_index:.1} MiB, with 50,000 watcher tasks {rss_watching:.1} MiB"
    );
    println!(
        "load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    summary("index time of one Server update, no watchers", unwatched);
    summary(
        "index time of one Server update, 50,000 watchers",
        index_times,
    );
    summary(
        "update -> watch notification (per notified watcher)",
        notify_times,
    );
    summary(
        "index time of one HTTPRoute update, 50,000 watchers",
        route_index_times,
    );
    summary(
        "HTTPRoute update -> watch notification (per notified watcher)",
        route_notify_times,
    );
}
