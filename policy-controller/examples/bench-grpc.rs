//! The inbound policy gRPC API at scale: an index of 50,000 pods (100 namespaces, 50 Servers
//! and 50 ServerAuthorizations per namespace, each Server selecting 10 pods), 10,000 open
//! `WatchPort` streams over loopback (100 HTTP/2 connections of 100 streams), then measures RSS,
//! memory per open stream, and the delay from one Server change to every affected stream
//! receiving the new policy. The server (index + gRPC service) runs in a child process (this
//! program again, with `WEFT_BENCH_ROLE=server`), so its RSS is the server's alone; the parent
//! holds the clients and sends the child its changes over a pipe (the pipe's latency counts in
//! the delays). A measurement, not a test.
//!
//! cargo run --release -p weft-policy-controller --example bench-grpc

#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use kubert::index::IndexNamespacedResource;
use linkerd2_proxy_api::inbound::{
    inbound_server_policies_client::InboundServerPoliciesClient, PortSpec,
};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use weft_policy_controller::{
    inbound::{InboundPolicyMetrics, InboundPolicyService, InboundSettings},
    server::shutdown::Stopping,
};
use weft_policy_index::{ClusterSettings, DefaultPolicy, Index, IndexMetrics, SharedIndex};
use weft_policy_k8s_api::{Server, ServerAuthorization};

const NAMESPACES: usize = 100;
const PODS_PER_NS: usize = 500;
const APPS_PER_NS: usize = 50;
const STREAMS: usize = 10_000;
const CONNECTIONS: usize = 100;
const CHANGES: usize = 200;

fn ns(n: usize) -> String {
    format!("ns-{n}")
}

fn pod(n: usize, i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "namespace": ns(n), "name": format!("pod-{i}"),
            "labels": {"app": format!("app-{}", i % APPS_PER_NS), "pod-template-hash": "5d8f7c9b4"},
        },
    }))
    .map(|mut p: Pod| {
        p.spec = Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    })
    .unwrap()
}

fn server(n: usize, app: usize, protocol: &str) -> Server {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1", "kind": "Server",
        "metadata": {"namespace": ns(n), "name": format!("app-{app}"), "labels": {"app": format!("app-{app}")}},
        "spec": {"podSelector": {"matchLabels": {"app": format!("app-{app}")}}, "port": "http", "proxyProtocol": protocol},
    }))
    .unwrap()
}

fn authz(n: usize, app: usize) -> ServerAuthorization {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1", "kind": "ServerAuthorization",
        "metadata": {"namespace": ns(n), "name": format!("app-{app}-clients")},
        "spec": {"server": {"name": format!("app-{app}")},
                 "client": {"meshTLS": {"serviceAccounts": [{"name": "api"}, {"name": "web", "namespace": "other"}]}}},
    }))
    .unwrap()
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    if std::env::var("WEFT_BENCH_ROLE").as_deref() == Ok("server") {
        serve().await
    } else {
        measure().await
    }
}

/// The child: builds the index, serves it, and answers the parent's commands on stdin, one line
/// each: `rss`, `watches`, `change <namespace> <app> <protocol>`.
async fn serve() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let start_rss = rss_mib();
    let index: SharedIndex = Index::shared(
        ClusterSettings {
            mesh: weft_core::Mesh::new("weft", "cluster.local"),
            cluster_domain: "cluster.local".to_string(),
            default_opaque_ports: weft_core::PortList::default(),
            default_policy: DefaultPolicy::AllUnauthenticated,
            cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
        },
        IndexMetrics::register(&mut Registry::default()),
    );
    {
        let mut idx = index.write();
        for n in 0..NAMESPACES {
            for app in 0..APPS_PER_NS {
                IndexNamespacedResource::apply(&mut *idx, server(n, app, "HTTP/1"));
                IndexNamespacedResource::apply(&mut *idx, authz(n, app));
            }
            for i in 0..PODS_PER_NS {
                IndexNamespacedResource::apply(&mut *idx, pod(n, i));
            }
        }
    }
    let index_rss = rss_mib();

    let settings = InboundSettings::new(index.read().cluster()).unwrap();
    let metrics = InboundPolicyMetrics::register(&mut Registry::default());
    let (_stop, stopping) = Stopping::new();
    let service = InboundPolicyService::new(index.clone(), settings, stopping, metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(1_000))
            .add_service(service.into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    println!("ready {addr} {start_rss} {index_rss}");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rss"] => println!("{}", rss_mib()),
            ["watches"] => println!(
                "{}",
                metrics.open_streams(weft_policy_controller::inbound::Rpc::WatchPort)
            ),
            ["change", n, app, protocol] => {
                let server = server(n.parse().unwrap(), app.parse().unwrap(), protocol);
                IndexNamespacedResource::apply(&mut *index.write(), server);
                println!("changed");
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}

/// The parent's end of the pipe to the server.
struct ServerProcess {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ServerProcess {
    async fn ask(&mut self, command: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.stdout.next_line().await.unwrap().unwrap()
    }
}

/// The parent: starts the server process, opens the streams and measures.
async fn measure() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("WEFT_BENCH_ROLE", "server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut server_process = ServerProcess {
        _child: child,
        stdin,
        stdout,
    };
    let ready = server_process.stdout.next_line().await.unwrap().unwrap();
    let words: Vec<&str> = ready.split_whitespace().collect();
    let ["ready", addr, start_rss, index_rss] = words.as_slice() else {
        panic!("the server process said {ready:?}");
    };
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let start_rss: f64 = start_rss.parse().unwrap();
    let index_rss: f64 = index_rss.parse().unwrap();
    let client_start_rss = rss_mib();

    // Stream s watches pod s of the first STREAMS / PODS_PER_NS namespaces; each received
    // message reports (s, when).
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let opening = Instant::now();
    for s in 0..STREAMS {
        let mut client = InboundServerPoliciesClient::new(channels[s % CONNECTIONS].clone());
        let arrived = arrived.clone();
        let spec = PortSpec {
            workload: format!("{}:pod-{}", ns(s / PODS_PER_NS), s % PODS_PER_NS),
            port: 8080,
        };
        tokio::spawn(async move {
            let mut stream = client.watch_port(spec).await.unwrap().into_inner();
            while let Some(_server) = stream.message().await.unwrap() {
                let _ = arrived.send((s, Instant::now()));
            }
        });
    }
    for _ in 0..STREAMS {
        arrivals.recv().await.unwrap();
    }
    let opened_in = opening.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let streams_rss: f64 = server_process.ask("rss").await.parse().unwrap();
    let client_streams_rss = rss_mib();
    assert_eq!(server_process.ask("watches").await, STREAMS.to_string());

    // Each change toggles the protocol of one Server of a watched namespace: its 10 pods' streams
    // must each receive exactly one message.
    let watched_ns = STREAMS / PODS_PER_NS;
    let mut per_stream = Vec::new();
    let mut per_change = Vec::new();
    let mut http2 = std::collections::HashSet::new();
    for c in 0..CHANGES {
        let (n, app) = (c % watched_ns, (c * 7) % APPS_PER_NS);
        let protocol = if http2.insert((n, app)) {
            "HTTP/2"
        } else {
            http2.remove(&(n, app));
            "HTTP/1"
        };
        let affected: Vec<usize> = (0..PODS_PER_NS)
            .filter(|i| i % APPS_PER_NS == app)
            .map(|i| n * PODS_PER_NS + i)
            .collect();
        let changed = Instant::now();
        assert_eq!(
            server_process
                .ask(&format!("change {n} {app} {protocol}"))
                .await,
            "changed"
        );
        let mut last = Duration::ZERO;
        for _ in 0..affected.len() {
            let (s, when) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("every affected stream receives the change")
                .unwrap();
            assert!(
                affected.contains(&s),
                "stream {s} was not affected by change {c}"
            );
            let delay = when - changed;
            per_stream.push(delay);
            last = last.max(delay);
        }
        per_change.push(last);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        arrivals.try_recv().is_err(),
        "no stream received an unrelated message"
    );
    per_stream.sort();
    per_change.sort();

    println!("pods {}, Servers {}, ServerAuthorizations {}, open WatchPort streams {STREAMS} over {CONNECTIONS} connections",
        NAMESPACES * PODS_PER_NS, NAMESPACES * APPS_PER_NS, NAMESPACES * APPS_PER_NS);
    println!("server RSS: start {start_rss:.1} MiB, index built {index_rss:.1} MiB, with streams {streams_rss:.1} MiB");
    println!(
        "server memory per open stream (incl. the first policy sent): {:.1} KiB",
        (streams_rss - index_rss) * 1024.0 / STREAMS as f64
    );
    println!(
        "client RSS (the benchmark's clients, not the server): {client_start_rss:.1} MiB before the streams, {client_streams_rss:.1} MiB with them"
    );
    println!("opening {STREAMS} streams and receiving their first policy: {opened_in:?}");
    println!(
        "Server change -> affected stream received ({} samples, 10 streams per change): p50 {:?}, p99 {:?}, max {:?}",
        per_stream.len(),
        percentile(&per_stream, 0.50),
        percentile(&per_stream, 0.99),
        per_stream[per_stream.len() - 1]
    );
    println!(
        "Server change -> every affected stream received ({CHANGES} changes): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&per_change, 0.50),
        percentile(&per_change, 0.99),
        per_change[per_change.len() - 1]
    );
}
