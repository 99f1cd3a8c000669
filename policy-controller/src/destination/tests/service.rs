//! The service over a real socket (127.0.0.1:0, plaintext) with tonic's client.

use super::fake::*;
use crate::{
    destination::{
        endpoint::weighted_addr, DestinationMetrics, DestinationRpc, DestinationService,
    },
    server::shutdown::Stopping,
};
use linkerd2_proxy_api::destination::{
    destination_client::DestinationClient, update, DestinationProfile, GetDestination, Update,
};
use prometheus_client::registry::Registry;
use std::{fmt::Debug, net::SocketAddr, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{transport::Channel, Code, Streaming};
use weft_endpoints_index::OutboundTarget;

/// How long to wait for a message that must not come. Long enough for a wrongly sent message to
/// arrive on loopback; not a performance assertion.
const QUIET: Duration = Duration::from_millis(200);
/// Upper bound for what must happen, so a bug fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(5);

const WEB: &str = "web.ns.svc.cluster.local:80";

struct TestServer {
    addr: SocketAddr,
    source: FakeSource,
    metrics: DestinationMetrics,
    /// Sending `true` is the server's shutdown signal to open streams.
    stop: watch::Sender<bool>,
    _task: JoinHandle<()>,
}

async fn start() -> TestServer {
    let source = FakeSource::default();
    let metrics = DestinationMetrics::register(&mut Registry::default());
    let (stop, stopping) = Stopping::new();
    let service = DestinationService::new(source.clone(), stopping, metrics.clone());
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

async fn client(addr: SocketAddr) -> DestinationClient<Channel> {
    DestinationClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn dst(path: &str) -> GetDestination {
    GetDestination {
        path: path.into(),
        ..Default::default()
    }
}

#[derive(Debug)]
pub(crate) enum Next<T> {
    Message(Box<T>),
    End,
    Quiet,
}

pub(crate) async fn next<T>(stream: &mut Streaming<T>, wait: Duration) -> Next<T> {
    match tokio::time::timeout(wait, stream.message()).await {
        Err(_elapsed) => Next::Quiet,
        Ok(Ok(Some(message))) => Next::Message(Box::new(message)),
        Ok(Ok(None)) => Next::End,
        Ok(Err(status)) => panic!("the stream failed: {status}"),
    }
}

pub(crate) async fn message<T: Debug>(stream: &mut Streaming<T>) -> T {
    match next(stream, BOUND).await {
        Next::Message(message) => *message,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub(crate) async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn added(update: &Update) -> Vec<SocketAddr> {
    match update.update.as_ref().unwrap() {
        update::Update::Add(set) => set
            .addrs
            .iter()
            .map(|a| SocketAddr::try_from(a.addr.unwrap()).unwrap())
            .collect(),
        other => panic!("expected Add, got {other:?}"),
    }
}

fn removed(update: &Update) -> Vec<SocketAddr> {
    match update.update.as_ref().unwrap() {
        update::Update::Remove(set) => set
            .addrs
            .iter()
            .map(|a| SocketAddr::try_from(*a).unwrap())
            .collect(),
        other => panic!("expected Remove, got {other:?}"),
    }
}

fn no_endpoints(update: &Update) -> bool {
    match update.update.as_ref().unwrap() {
        update::Update::NoEndpoints(none) => none.exists,
        other => panic!("expected NoEndpoints, got {other:?}"),
    }
}

#[tokio::test]
async fn get_sends_the_endpoints_at_once_then_only_differences() {
    let server = start().await;
    let web = service("ns", "web", 80);
    let a = || meshed("10.0.0.1:8080", "ns", "web-0");
    let b = || meshed("10.0.0.2:8080", "ns", "web-1");
    server.source.set_endpoints(&web, set([a()]));

    let mut client = client(server.addr).await;
    let mut stream = client.get(dst(WEB)).await.unwrap().into_inner();
    let first = message(&mut stream).await;
    assert_eq!(added(&first), [addr("10.0.0.1:8080")]);
    assert_eq!(server.metrics.open_streams(DestinationRpc::Get), 1);

    // Woken without a change, and a change of another Service: nothing is sent.
    server.source.touch_endpoints(&web);
    server
        .source
        .set_endpoints(&service("ns", "other", 80), set([b()]));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    server.source.set_endpoints(&web, set([a(), b()]));
    assert_eq!(added(&message(&mut stream).await), [addr("10.0.0.2:8080")]);
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    server.source.set_endpoints(&web, set([b()]));
    assert_eq!(
        removed(&message(&mut stream).await),
        [addr("10.0.0.1:8080")]
    );

    server.source.set_endpoints(&web, empty(true));
    assert!(no_endpoints(&message(&mut stream).await));
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));
    assert_eq!(server.metrics.updates(DestinationRpc::Get), 4);

    // The index forgets the Service port: the stream ends, status OK.
    server.source.forget_service(&web);
    assert!(matches!(next(&mut stream, BOUND).await, Next::End));
    wait_for(|| server.metrics.open_streams(DestinationRpc::Get) == 0).await;
    assert_eq!(server.metrics.requests(DestinationRpc::Get, Code::Ok), 1);
}

#[tokio::test]
async fn get_of_a_service_not_yet_created_says_so_then_adds_its_endpoints() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut stream = client.get(dst(WEB)).await.unwrap().into_inner();
    assert!(!no_endpoints(&message(&mut stream).await));

    let endpoint = meshed("10.0.0.1:8080", "ns", "web-0");
    server
        .source
        .set_endpoints(&service("ns", "web", 80), set([endpoint.clone()]));
    let update = message(&mut stream).await;
    match update.update.unwrap() {
        update::Update::Add(set) => assert_eq!(set.addrs, [weighted_addr(&endpoint)]),
        other => panic!("expected Add, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_paths_are_invalid_arguments() {
    let server = start().await;
    let mut client = client(server.addr).await;
    for path in ["web", "web.ns.svc.cluster.local", "example.com:80", ""] {
        let status = client.get(dst(path)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{path:?}: {status}");
        assert!(
            status.message().contains(&format!("{path:?}")),
            "the message names the path: {status}"
        );
    }
    for path in ["10.0.0.1", "example.com:80", "[::1]"] {
        let status = client.get_profile(dst(path)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{path:?}: {status}");
    }
    assert_eq!(
        server
            .metrics
            .requests(DestinationRpc::Get, Code::InvalidArgument),
        4
    );
    assert_eq!(
        server
            .metrics
            .requests(DestinationRpc::GetProfile, Code::InvalidArgument),
        3
    );
    assert_eq!(server.metrics.open_streams(DestinationRpc::Get), 0);
}

#[tokio::test]
async fn get_profile_sends_the_profile_of_an_address_then_each_change() {
    let server = start().await;
    let ip = addr("10.0.0.1:8080");
    let mut client = client(server.addr).await;
    let mut stream = client
        .get_profile(dst("10.0.0.1:8080"))
        .await
        .unwrap()
        .into_inner();
    // Unknown: the default profile, so the proxy forwards to the original destination.
    assert_eq!(message(&mut stream).await, DestinationProfile::default());

    let pod = meshed("10.0.0.1:8080", "ns", "web-0");
    server
        .source
        .set_target(ip, OutboundTarget::Pod(pod.clone()));
    let profile = message(&mut stream).await;
    assert_eq!(profile.endpoint, Some(weighted_addr(&pod)));
    assert!(!profile.opaque_protocol);
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));

    server.source.set_target(
        ip,
        OutboundTarget::Service {
            service: service("ns", "db", 5432),
            opaque: true,
        },
    );
    let profile = message(&mut stream).await;
    assert_eq!(profile.fully_qualified_name, "db.ns.svc.cluster.local");
    assert!(profile.opaque_protocol);
    assert_eq!(profile.endpoint, None);
    assert_eq!(server.metrics.updates(DestinationRpc::GetProfile), 3);
}

#[tokio::test]
async fn get_profile_by_service_name_sends_one_profile() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut stream = client.get_profile(dst(WEB)).await.unwrap().into_inner();
    let profile = message(&mut stream).await;
    assert_eq!(profile.fully_qualified_name, "web.ns.svc.cluster.local");
    assert!(matches!(next(&mut stream, QUIET).await, Next::Quiet));
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut get = client.get(dst(WEB)).await.unwrap().into_inner();
    let mut by_addr = client
        .get_profile(dst("10.0.0.9:80"))
        .await
        .unwrap()
        .into_inner();
    let mut by_name = client.get_profile(dst(WEB)).await.unwrap().into_inner();
    message(&mut get).await;
    message(&mut by_addr).await;
    message(&mut by_name).await;
    assert_eq!(server.metrics.open_streams(DestinationRpc::GetProfile), 2);

    server.stop.send(true).unwrap();
    assert!(matches!(next(&mut get, BOUND).await, Next::End));
    assert!(matches!(next(&mut by_addr, BOUND).await, Next::End));
    assert!(matches!(next(&mut by_name, BOUND).await, Next::End));
    wait_for(|| {
        server.metrics.open_streams(DestinationRpc::Get) == 0
            && server.metrics.open_streams(DestinationRpc::GetProfile) == 0
    })
    .await;
}

#[tokio::test]
async fn a_client_that_goes_away_releases_its_stream() {
    let server = start().await;
    let mut client = client(server.addr).await;
    let mut stream = client.get(dst(WEB)).await.unwrap().into_inner();
    message(&mut stream).await;
    assert_eq!(server.metrics.open_streams(DestinationRpc::Get), 1);
    drop(stream);
    drop(client);
    wait_for(|| server.metrics.open_streams(DestinationRpc::Get) == 0).await;
}
