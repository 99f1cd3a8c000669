//! The service over a real socket (127.0.0.1:0, plaintext) with tonic's client: what the proxy
//! receives is the policy the mapping built, through prost's encoding and decoding.

use super::proxy_checks::check_policy;
use crate::{
    destination::tests::{
        fake::{addr, empty, meshed, service, set, FakeSource, CLUSTER_DOMAIN},
        service::{message, next, wait_for, Next},
    },
    outbound::{outbound_policy, OutboundPolicyMetrics, OutboundPolicyService, OutboundRpc},
    server::shutdown::Stopping,
};
use linkerd2_proxy_api::{
    net::TcpAddress,
    outbound::{
        outbound_policies_client::OutboundPoliciesClient, proxy_protocol::Kind,
        traffic_spec::Target, OutboundPolicy, TrafficSpec,
    },
};
use prometheus_client::registry::Registry;
use std::{net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{transport::Channel, Code};
use weft_endpoints_index::OutboundTarget;

/// How long to wait for a message that must not come (see the Destination tests).
const QUIET: Duration = Duration::from_millis(200);
/// Upper bound for what must happen, so a bug fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(5);

struct TestServer {
    addr: SocketAddr,
    source: FakeSource,
    metrics: OutboundPolicyMetrics,
    stop: watch::Sender<bool>,
    _task: JoinHandle<()>,
}

async fn start() -> TestServer {
    let source = FakeSource::default();
    let metrics = OutboundPolicyMetrics::register(&mut Registry::default());
    let (stop, stopping) = Stopping::new();
    let service = OutboundPolicyService::new(source.clone(), stopping, metrics.clone());
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
        source,
        metrics,
        stop,
        _task: task,
    }
}

async fn client(addr: SocketAddr) -> OutboundPoliciesClient<Channel> {
    OutboundPoliciesClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn to_addr(s: &str) -> TrafficSpec {
    TrafficSpec {
        source_workload: "ns:client".into(),
        target: Some(Target::Addr(TcpAddress::from(addr(s)))),
    }
}

fn to_name(s: &str) -> TrafficSpec {
    TrafficSpec {
        source_workload: "ns:client".into(),
        target: Some(Target::Authority(s.into())),
    }
}

fn web(opaque: bool) -> OutboundTarget {
    OutboundTarget::Service {
        service: service("ns", "web", 80),
        opaque,
    }
}

fn expected(target: &OutboundTarget) -> OutboundPolicy {
    outbound_policy(target, CLUSTER_DOMAIN).unwrap()
}

#[tokio::test]
async fn get_answers_the_policy_the_proxy_accepts() {
    let server = start().await;
    let pod = OutboundTarget::Pod(meshed("10.0.0.7:8080", "ns", "web-0"));
    server.source.set_target(addr("10.96.0.1:80"), web(false));
    server.source.set_target(addr("10.96.0.2:80"), web(true));
    server.source.set_target(addr("10.0.0.7:8080"), pod.clone());
    let mut client = client(server.addr).await;
    for (target, ip) in [
        (web(false), "10.96.0.1:80"),
        (web(true), "10.96.0.2:80"),
        (pod, "10.0.0.7:8080"),
    ] {
        let policy = client.get(to_addr(ip)).await.unwrap().into_inner();
        assert_eq!(policy, expected(&target), "{ip}");
        check_policy(&policy).unwrap();
    }
    assert_eq!(server.metrics.requests(OutboundRpc::Get, Code::Ok), 3);
}

#[tokio::test]
async fn refusals() {
    let server = start().await;
    let mut client = client(server.addr).await;
    for (spec, code) in [
        // Not known to the mesh: the proxy forwards to the original destination.
        (to_addr("192.0.2.1:443"), Code::NotFound),
        (to_name("web.ns.svc.cluster.local:80"), Code::NotFound),
        (to_name("example.com:443"), Code::NotFound),
        (to_addr("10.0.0.1:0"), Code::InvalidArgument),
        (to_name("web ns:80"), Code::InvalidArgument),
        (
            TrafficSpec {
                source_workload: "ns:client".into(),
                target: None,
            },
            Code::InvalidArgument,
        ),
    ] {
        let status = client.get(spec.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{spec:?}: {status}");
        let status = client.watch(spec.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "watch {spec:?}: {status}");
    }
    assert_eq!(server.metrics.requests(OutboundRpc::Get, Code::NotFound), 3);
    assert_eq!(
        server
            .metrics
            .requests(OutboundRpc::Watch, Code::InvalidArgument),
        3
    );
    assert_eq!(server.metrics.open_streams(OutboundRpc::Watch), 0);
}

#[tokio::test]
async fn watch_sends_the_policy_then_each_change_and_ends_when_the_target_goes() {
    let server = start().await;
    let ip = addr("10.96.0.1:80");
    server.source.set_target(ip, web(false));
    let mut client = client(server.addr).await;
    let mut stream = client
        .watch(to_addr("10.96.0.1:80"))
        .await
        .unwrap()
        .into_inner();
    let first = message(&mut stream).await;
    assert_eq!(first, expected(&web(false)));
    assert_eq!(server.metrics.open_streams(OutboundRpc::Watch), 1);

    // Another address changes: nothing is sent.
    server.source.set_target(addr("10.96.0.2:80"), web(true));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    // The Service marks the port opaque.
    server.source.set_target(ip, web(true));
    let opaque = message(&mut stream).await;
    assert!(matches!(
        opaque.protocol.as_ref().unwrap().kind,
        Some(Kind::Opaque(_))
    ));
    check_policy(&opaque).unwrap();
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));
    assert_eq!(server.metrics.updates(OutboundRpc::Watch), 2);

    // The Service goes: the stream ends with status OK; the proxy asks again.
    server.source.set_target(ip, OutboundTarget::Unknown);
    assert!(matches!(next(&mut stream, BOUND).await, Next::End));
    wait_for(|| server.metrics.open_streams(OutboundRpc::Watch) == 0).await;
}

#[tokio::test]
async fn watch_by_name_lasts_as_long_as_the_service() {
    let server = start().await;
    let svc = service("ns", "web", 80);
    server
        .source
        .set_endpoints(&svc, set([meshed("10.0.0.1:8080", "ns", "web-0")]));
    let mut client = client(server.addr).await;
    let mut stream = client
        .watch(to_name("web.ns.svc.cluster.local:80"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message(&mut stream).await, expected(&web(false)));

    // Endpoints come and go: the policy (which names the Service, not its endpoints) does not
    // change.
    server.source.set_endpoints(&svc, empty(true));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    server.source.set_endpoints(&svc, empty(false));
    assert!(matches!(next(&mut stream, BOUND).await, Next::End));
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let server = start().await;
    server.source.set_target(addr("10.96.0.1:80"), web(false));
    let mut client = client(server.addr).await;
    let mut stream = client
        .watch(to_addr("10.96.0.1:80"))
        .await
        .unwrap()
        .into_inner();
    message(&mut stream).await;
    server.stop.send(true).unwrap();
    assert!(matches!(next(&mut stream, BOUND).await, Next::End));
    wait_for(|| server.metrics.open_streams(OutboundRpc::Watch) == 0).await;
}
