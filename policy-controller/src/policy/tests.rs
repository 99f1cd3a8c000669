//! Policy API tests over a real socket (127.0.0.1:0) with hyper's client.
#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use kubert::index::IndexNamespacedResource;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::{net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use weft_policy_index::{
    ClusterInfo, DefaultPolicy, InboundPolicy, Index, IndexMetrics, SharedIndex,
};
use weft_policy_k8s_api::Server;

/// How long to wait for a line that must not come. Long enough for a wrongly sent line to arrive
/// on loopback; not a performance assertion.
const QUIET: Duration = Duration::from_millis(300);
/// Upper bound for things that must happen, so a bug fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(5);

struct TestServer {
    addr: SocketAddr,
    index: SharedIndex,
    metrics: ApiMetrics,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn mk_pod(ns: &str, name: &str, app: &str, port: i32) -> Pod {
    Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            labels: Some([("app".to_string(), app.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: port,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mk_server(ns: &str, name: &str, app: &str, port: Value, protocol: &str) -> Server {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "port": port, "proxyProtocol": protocol},
    }))
    .unwrap()
}

async fn start() -> TestServer {
    let mut registry = Registry::default();
    let index = Index::shared(
        ClusterInfo {
            default_policy: DefaultPolicy::AllUnauthenticated,
            cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
        },
        IndexMetrics::register(&mut registry),
    );
    {
        let mut index = index.write();
        index.apply(mk_pod("ns", "web", "web", 8080));
        index.apply(mk_pod("ns", "db", "db", 5432));
        index.apply(mk_server("ns", "web", "web", json!("http"), "HTTP/1"));
    }
    let metrics = ApiMetrics::register(&mut registry);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve_api(listener, index.clone(), metrics.clone(), async {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        index,
        metrics,
        shutdown: Some(tx),
        task,
    }
}

async fn send(addr: SocketAddr, method: Method, path: &str) -> http::Response<Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "policy")
        .body(Empty::<Bytes>::new())
        .unwrap();
    tokio::time::timeout(BOUND, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn get(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, http::HeaderMap, Value) {
    let response = send(addr, method, path).await;
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(BOUND, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[derive(Debug, PartialEq)]
enum Next {
    Line(Value),
    End,
    Quiet,
}

/// Reads a watch stream line by line.
struct Lines {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    async fn open(addr: SocketAddr, path: &str) -> Self {
        let response = send(addr, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        Self {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }

    /// The next complete line, the end of the stream, or `Quiet` if nothing came within `wait`.
    async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return Next::Line(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_elapsed) => return Next::Quiet,
                Ok(None) => {
                    assert!(self.buffer.is_empty(), "stream ended mid-line");
                    return Next::End;
                }
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    async fn policy(&mut self) -> InboundPolicy {
        match self.next(BOUND).await {
            Next::Line(line) => serde_json::from_value(line).unwrap(),
            other => panic!("expected a policy line, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn get_answers_the_policy_as_json() {
    let server = start().await;
    let (status, headers, body) = get(server.addr, Method::GET, "/v1/inbound/ns/web/8080").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        json!({"server": {"kind": "Server", "name": "web"}, "protocol": "HTTP/1", "authorizations": []})
    );

    let (status, _, body) = get(server.addr, Method::GET, "/v1/inbound/ns/db/5432").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["server"],
        json!({"kind": "default", "policy": "all-unauthenticated"})
    );
    assert_eq!(server.metrics.requests(200, false), 2);
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let server = start().await;
    let (status, _, body) = get(server.addr, Method::GET, "/v1/inbound/ns/nope/8080").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "pod ns/nope is not known to the policy index"})
    );

    let (status, _, body) = get(server.addr, Method::GET, "/v1/inbound/ns/web/70000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "port \"70000\" is not a port number (1-65535)"})
    );

    let (status, headers, body) = get(server.addr, Method::POST, "/v1/inbound/ns/web/8080").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("method POST is not allowed"));

    let (status, _, _) = get(server.addr, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _) = get(
        server.addr,
        Method::GET,
        "/v1/inbound/ns/nope/8080?watch=true",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(server.metrics.requests(404, false), 2);
    assert_eq!(server.metrics.requests(404, true), 1);
    assert_eq!(server.metrics.requests(400, false), 1);
    assert_eq!(server.metrics.requests(405, false), 1);
    assert_eq!(server.metrics.active_watches(), 0);
}

#[tokio::test]
async fn watch_sends_exactly_one_line_per_relevant_change() {
    let server = start().await;
    let mut lines = Lines::open(server.addr, "/v1/inbound/ns/web/8080?watch=true").await;
    assert_eq!(
        lines.policy().await.protocol,
        weft_policy_k8s_api::ProxyProtocol::Http1
    );
    assert_eq!(server.metrics.active_watches(), 1);

    // Irrelevant: a Server for another pod, one in another namespace, the same Server again.
    {
        let mut index = server.index.write();
        index.apply(mk_server("ns", "db", "db", json!(5432), "opaque"));
        index.apply(mk_server("other", "web", "web", json!(8080), "gRPC"));
        index.apply(mk_server("ns", "web", "web", json!("http"), "HTTP/1"));
    }
    assert_eq!(lines.next(QUIET).await, Next::Quiet);

    // Relevant: the Server's protocol changes.
    server
        .index
        .write()
        .apply(mk_server("ns", "web", "web", json!("http"), "HTTP/2"));
    assert_eq!(
        lines.policy().await.protocol,
        weft_policy_k8s_api::ProxyProtocol::Http2
    );
    assert_eq!(lines.next(QUIET).await, Next::Quiet);

    // The pod is deleted: a final line, then the end.
    IndexNamespacedResource::<Pod>::delete(&mut *server.index.write(), "ns".into(), "web".into());
    assert_eq!(
        lines.next(BOUND).await,
        Next::Line(json!({"event": "pod-deleted", "namespace": "ns", "pod": "web"}))
    );
    assert_eq!(lines.next(BOUND).await, Next::End);
    wait_for(|| server.metrics.active_watches() == 0).await;
    assert_eq!(server.metrics.requests(200, true), 1);
}

#[tokio::test]
async fn a_disconnected_client_releases_its_watch() {
    let server = start().await;
    let mut lines = Lines::open(server.addr, "/v1/inbound/ns/db/5432?watch=true").await;
    lines.policy().await;
    assert_eq!(server.metrics.active_watches(), 1);
    drop(lines);
    wait_for(|| server.metrics.active_watches() == 0).await;
}

#[tokio::test]
async fn shutdown_ends_watches_and_the_server() {
    let mut server = start().await;
    let mut lines = Lines::open(server.addr, "/v1/inbound/ns/web/8080?watch=true").await;
    lines.policy().await;
    server.shutdown.take().unwrap().send(()).unwrap();
    assert_eq!(lines.next(BOUND).await, Next::End);
    tokio::time::timeout(BOUND, server.task)
        .await
        .unwrap()
        .unwrap();
}

async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
