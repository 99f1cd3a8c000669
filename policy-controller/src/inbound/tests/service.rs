//! The service over a real socket (127.0.0.1:0, plaintext) with tonic's client.

use super::super::*;
use crate::server::shutdown::Stopping;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use kubert::index::IndexNamespacedResource;
use linkerd2_proxy_api::inbound::{
    self as proto, inbound_server_policies_client::InboundServerPoliciesClient,
    proxy_protocol::Kind,
};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::{net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{transport::Channel, Code, Streaming};
use weft_policy_index::{ClusterSettings, DefaultPolicy, Index, IndexMetrics, SharedIndex};
use weft_policy_k8s_api::{Server, ServerAuthorization};

/// How long to wait for a message that must not come. Long enough for a wrongly sent message to
/// arrive on loopback; not a performance assertion.
const QUIET: Duration = Duration::from_millis(200);
/// Upper bound for what must happen, so a bug fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(5);

struct TestServer {
    addr: SocketAddr,
    index: SharedIndex,
    metrics: InboundPolicyMetrics,
    /// Sending `true` is the server's shutdown signal to open streams.
    stop: watch::Sender<bool>,
    _task: JoinHandle<()>,
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

fn mk_server(ns: &str, name: &str, app: &str, port: serde_json::Value, protocol: &str) -> Server {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"namespace": ns, "name": name, "labels": {"app": app}},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "port": port,
            "proxyProtocol": protocol,
        }
    }))
    .unwrap()
}

fn mk_authz(ns: &str, name: &str, server: &str) -> ServerAuthorization {
    serde_json::from_value(json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "ServerAuthorization",
        "metadata": {"namespace": ns, "name": name},
        "spec": {
            "server": {"name": server},
            "client": {"meshTLS": {"serviceAccounts": [{"name": "api"}]}},
        }
    }))
    .unwrap()
}

fn apply<T>(index: &SharedIndex, object: T)
where
    Index: IndexNamespacedResource<T>,
{
    IndexNamespacedResource::apply(&mut *index.write(), object);
}

/// A server with pods `ns/web` (a Server on 8080, HTTP/1) and `ns/db` (5432, default policy).
async fn start() -> TestServer {
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
    apply(&index, mk_pod("ns", "web", "web", 8080));
    apply(&index, mk_pod("ns", "db", "db", 5432));
    apply(&index, mk_server("ns", "web", "web", json!(8080), "HTTP/1"));

    let settings = InboundSettings::new(index.read().cluster()).unwrap();
    let metrics = InboundPolicyMetrics::register(&mut Registry::default());
    let (stop, stopping) = Stopping::new();
    let service = InboundPolicyService::new(index.clone(), settings, stopping, metrics.clone());

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    TestServer {
        addr,
        index,
        metrics,
        stop,
        _task: task,
    }
}

async fn client(addr: SocketAddr) -> InboundServerPoliciesClient<Channel> {
    InboundServerPoliciesClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn spec(workload: &str, port: u32) -> proto::PortSpec {
    proto::PortSpec {
        workload: workload.into(),
        port,
    }
}

const WEB: &str = r#"{"ns":"ns","pod":"web"}"#;

fn name(server: &proto::Server) -> &str {
    &server.labels["name"]
}

fn kind(server: &proto::Server) -> &Kind {
    server.protocol.as_ref().unwrap().kind.as_ref().unwrap()
}

#[derive(Debug)]
enum Next {
    Message(Box<proto::Server>),
    End,
    Quiet,
}

async fn next(stream: &mut Streaming<proto::Server>, wait: Duration) -> Next {
    match tokio::time::timeout(wait, stream.message()).await {
        Err(_elapsed) => Next::Quiet,
        Ok(Ok(Some(server))) => Next::Message(Box::new(server)),
        Ok(Ok(None)) => Next::End,
        Ok(Err(status)) => panic!("the stream failed: {status}"),
    }
}

async fn message(stream: &mut Streaming<proto::Server>) -> proto::Server {
    match next(stream, BOUND).await {
        Next::Message(server) => *server,
        other => panic!("expected a policy, got {other:?}"),
    }
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

#[tokio::test]
async fn get_port_answers_the_current_policy() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let web = client.get_port(spec(WEB, 8080)).await.unwrap().into_inner();
    assert_eq!(name(&web), "web");
    assert!(matches!(kind(&web), Kind::Http1(_)));

    let db = client
        .get_port(spec("ns:db", 5432))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(db.labels["kind"], "default");
    assert_eq!(name(&db), "all-unauthenticated");
    assert!(matches!(kind(&db), Kind::Detect(_)));
    assert_eq!(server.metrics.requests(Rpc::GetPort, Code::Ok), 2);
}

#[tokio::test]
async fn refusals_say_why() {
    let server = start().await;
    let mut client = client(server.addr).await;
    for (workload, port, code, message) in [
        (
            "web",
            8080,
            Code::InvalidArgument,
            ACCEPTED_FORMS.to_string(),
        ),
        (
            WEB,
            0,
            Code::InvalidArgument,
            "port 0 is not a port number (1-65535)".into(),
        ),
        (
            WEB,
            70000,
            Code::InvalidArgument,
            "port 70000 is not a port number (1-65535)".into(),
        ),
        (
            r#"{"ns":"ns","pod":"nope"}"#,
            8080,
            Code::NotFound,
            "pod ns/nope is not known to the policy index".into(),
        ),
    ] {
        let status = client.get_port(spec(workload, port)).await.unwrap_err();
        assert_eq!(status.code(), code, "{workload} {port}: {status}");
        assert!(
            status.message().contains(&message),
            "{workload} {port}: {status}"
        );
        let status = client.watch_port(spec(workload, port)).await.unwrap_err();
        assert_eq!(status.code(), code, "watch {workload} {port}: {status}");
    }
    assert_eq!(
        server.metrics.requests(Rpc::GetPort, Code::InvalidArgument),
        3
    );
    assert_eq!(
        server
            .metrics
            .requests(Rpc::WatchPort, Code::InvalidArgument),
        3
    );
    assert_eq!(server.metrics.requests(Rpc::GetPort, Code::NotFound), 1);
    assert_eq!(server.metrics.requests(Rpc::WatchPort, Code::NotFound), 1);
    assert_eq!(server.metrics.open_streams(Rpc::WatchPort), 0);
}

#[tokio::test]
async fn watch_sends_the_policy_at_once_then_one_message_per_relevant_change() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut stream = client
        .watch_port(spec(WEB, 8080))
        .await
        .unwrap()
        .into_inner();
    let first = message(&mut stream).await;
    assert_eq!(name(&first), "web");
    assert!(first.authorizations.is_empty());
    assert_eq!(server.metrics.open_streams(Rpc::WatchPort), 1);

    // Irrelevant: a Server for another pod, one in another namespace, the same Server again
    // (by name now: the same port), an authorization of another Server, another pod.
    apply(
        &server.index,
        mk_server("ns", "db", "db", json!(5432), "opaque"),
    );
    apply(
        &server.index,
        mk_server("other", "web", "web", json!(8080), "gRPC"),
    );
    apply(
        &server.index,
        mk_server("ns", "web", "web", json!("http"), "HTTP/1"),
    );
    apply(&server.index, mk_authz("ns", "db-clients", "db"));
    apply(&server.index, mk_pod("ns", "web-2", "web", 8080));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    // Relevant: the Server's protocol changes.
    apply(
        &server.index,
        mk_server("ns", "web", "web", json!("http"), "HTTP/2"),
    );
    assert!(matches!(kind(&message(&mut stream).await), Kind::Http2(_)));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    // Relevant: a ServerAuthorization of the Server.
    apply(&server.index, mk_authz("ns", "web-clients", "web"));
    let authorized = message(&mut stream).await;
    assert_eq!(authorized.authorizations.len(), 1);
    assert_eq!(authorized.authorizations[0].labels["name"], "web-clients");
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));
    assert_eq!(server.metrics.updates(Rpc::WatchPort), 3);

    // The pod is deleted: the stream ends (status OK; the proxy asks again with a backoff).
    IndexNamespacedResource::<Pod>::delete(&mut *server.index.write(), "ns".into(), "web".into());
    assert!(matches!(next(&mut stream, BOUND).await, Next::End));
    wait_for(|| server.metrics.open_streams(Rpc::WatchPort) == 0).await;
    assert_eq!(server.metrics.requests(Rpc::WatchPort, Code::Ok), 1);
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut web = client
        .watch_port(spec(WEB, 8080))
        .await
        .unwrap()
        .into_inner();
    let mut db = client
        .watch_port(spec("ns:db", 5432))
        .await
        .unwrap()
        .into_inner();
    message(&mut web).await;
    message(&mut db).await;
    server.stop.send(true).unwrap();
    assert!(matches!(next(&mut web, BOUND).await, Next::End));
    assert!(matches!(next(&mut db, BOUND).await, Next::End));
    wait_for(|| server.metrics.open_streams(Rpc::WatchPort) == 0).await;
}

#[tokio::test]
async fn a_client_that_goes_away_releases_its_watch() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut stream = client
        .watch_port(spec(WEB, 8080))
        .await
        .unwrap()
        .into_inner();
    message(&mut stream).await;
    assert_eq!(server.metrics.open_streams(Rpc::WatchPort), 1);
    drop(stream);
    drop(client);
    wait_for(|| server.metrics.open_streams(Rpc::WatchPort) == 0).await;
}
