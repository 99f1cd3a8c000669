//! The `Destination.Get` API at scale: an endpoints index of 1,000 Services (100 namespaces of
//! 10 ClusterIP Services) with one EndpointSlice of 10 ready endpoints each (10,000 endpoints,
//! 10,000 pods, half of them meshed), 10,000 open `Get` streams over loopback (100 HTTP/2
//! connections of 100 streams; 10 streams per Service, each on a different connection), then
//! measures RSS, memory per open stream, and the delay from one EndpointSlice change to every
//! watching stream receiving the update. The server (index + gRPC service) runs in a child
//! process (this program again, with `WEFT_BENCH_ROLE=server`), so its RSS is the server's alone;
//! the parent holds the clients and sends the child its changes over a pipe (the pipe's latency
//! counts in the delays). Each change re-applies one Service's EndpointSlice with one endpoint
//! changed: made not ready (one `Remove` per stream), ready again (one `Add`), or replaced by a
//! new pod at a new address (an `Add` then a `Remove`; the new pod is applied beforehand, untimed,
//! as it would exist before its endpoint became ready). The parent asserts that every watching
//! stream receives exactly those messages and no other stream any. A measurement, not a test.
//!
//! cargo run --release -p weft-policy-controller --example bench-destination

#![allow(clippy::unwrap_used)]

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ObjectReference, Pod, PodIP, PodSpec, PodStatus, Service, ServicePort,
            ServiceSpec,
        },
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use kubert::index::IndexNamespacedResource;
use linkerd2_proxy_api::destination::{
    destination_client::DestinationClient, update, GetDestination,
};
use prometheus_client::registry::Registry;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use weft_endpoints_index::{
    EndpointsIndex, EndpointsIndexMetrics, SharedEndpointsIndex, PROXY_CONTAINER_NAME,
    SERVICE_NAME_LABEL,
};
use weft_policy_controller::{
    destination::{DestinationMetrics, DestinationRpc, DestinationService},
    server::shutdown::Stopping,
};

const NAMESPACES: usize = 100;
const SERVICES_PER_NS: usize = 10;
const SERVICES: usize = NAMESPACES * SERVICES_PER_NS;
const ENDPOINTS_PER_SERVICE: usize = 10;
const STREAMS_PER_SERVICE: usize = 10;
const STREAMS: usize = SERVICES * STREAMS_PER_SERVICE;
const CONNECTIONS: usize = 100;
const CHANGES: usize = 200;
/// The Services changed (each twice: see `measure`).
const CHANGED_SERVICES: usize = CHANGES / 2;

fn meta(namespace: String, name: String) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(namespace),
        name: Some(name),
        ..Default::default()
    }
}

/// Service `g` (0..SERVICES) is `svc-{g % 10}` in namespace `ns-{g / 10}`.
fn ns(g: usize) -> String {
    format!("ns-{}", g / SERVICES_PER_NS)
}

fn svc_name(g: usize) -> String {
    format!("svc-{}", g % SERVICES_PER_NS)
}

/// A ClusterIP Service with one TCP port, 80 named `http`, to target port 8080.
fn service(g: usize) -> Service {
    let ip = format!("172.16.{}.{}", g / SERVICES_PER_NS, g % SERVICES_PER_NS + 1);
    Service {
        metadata: meta(ns(g), svc_name(g)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some(ip.clone()),
            cluster_ips: Some(vec![ip]),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod behind endpoint `i` of Service `g` after `generation` replacements, and its IP.
fn pod_name(g: usize, i: usize, generation: usize) -> String {
    match generation {
        0 => format!("{}-{i}", svc_name(g)),
        n => format!("{}-{i}-r{n}", svc_name(g)),
    }
}

fn pod_ip(g: usize, i: usize, generation: usize) -> String {
    format!(
        "10.{}.{}.{}",
        g / SERVICES_PER_NS,
        g % SERVICES_PER_NS,
        1 + i + ENDPOINTS_PER_SERVICE * generation
    )
}

/// A running pod of Service `g`, meshed (with Weft's proxy container) when `i` is even.
fn pod(g: usize, i: usize, generation: usize) -> Pod {
    let mut containers = vec![Container {
        name: "app".into(),
        ..Default::default()
    }];
    if i.is_multiple_of(2) {
        containers.push(Container {
            name: PROXY_CONTAINER_NAME.into(),
            ..Default::default()
        });
    }
    let ip = pod_ip(g, i, generation);
    Pod {
        metadata: meta(ns(g), pod_name(g, i, generation)),
        spec: Some(PodSpec {
            containers,
            service_account_name: Some(svc_name(g)),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.clone()),
            pod_ips: Some(vec![PodIP { ip }]),
            ..Default::default()
        }),
    }
}

/// What the benchmark has changed in a Service's EndpointSlice.
#[derive(Clone, Debug, Default)]
struct SliceState {
    /// The replacements of each endpoint's pod so far.
    generations: [usize; ENDPOINTS_PER_SERVICE],
    /// The endpoint whose `ready` condition is false, if any.
    unready: Option<usize>,
}

/// The EndpointSlice of Service `g`: IPv4, port `http` 8080, one endpoint per pod.
fn slice(g: usize, state: &SliceState) -> EndpointSlice {
    let mut metadata = meta(ns(g), format!("{}-abcde", svc_name(g)));
    metadata.labels = Some([(SERVICE_NAME_LABEL.to_string(), svc_name(g))].into());
    EndpointSlice {
        metadata,
        address_type: "IPv4".into(),
        endpoints: (0..ENDPOINTS_PER_SERVICE)
            .map(|i| Endpoint {
                addresses: vec![pod_ip(g, i, state.generations[i])],
                conditions: Some(EndpointConditions {
                    ready: Some(state.unready != Some(i)),
                    ..Default::default()
                }),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: Some(ns(g)),
                    name: Some(pod_name(g, i, state.generations[i])),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
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
/// each: `rss`, `streams`, `updates`, `pod <service> <endpoint>` (apply the pod that will replace
/// the endpoint), `change <service> <endpoint> unready|ready|replace` (re-apply the slice).
async fn serve() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let start_rss = rss_mib();
    let index: SharedEndpointsIndex = EndpointsIndex::shared(
        weft_core::ClusterSettings {
            mesh: weft_core::Mesh::new("weft", "cluster.local"),
            cluster_domain: "cluster.local".into(),
            cluster_networks: vec!["10.0.0.0/8".parse().unwrap()],
            default_policy: weft_core::DefaultPolicy::AllUnauthenticated,
            default_opaque_ports: weft_core::PortList::parse("25,3306").unwrap(),
        },
        EndpointsIndexMetrics::register(&mut Registry::default()),
    );
    // Objects are built one namespace at a time, as a watch would deliver them; only the index
    // calls are timed. Pods first, then Services, then EndpointSlices.
    let mut apply_time = Duration::ZERO;
    let unchanged = SliceState::default();
    for n in 0..NAMESPACES {
        let services: Vec<usize> = (n * SERVICES_PER_NS..(n + 1) * SERVICES_PER_NS).collect();
        let pods: Vec<Pod> = services
            .iter()
            .flat_map(|&g| (0..ENDPOINTS_PER_SERVICE).map(move |i| pod(g, i, 0)))
            .collect();
        let svcs: Vec<Service> = services.iter().map(|&g| service(g)).collect();
        let slices: Vec<EndpointSlice> = services.iter().map(|&g| slice(g, &unchanged)).collect();
        let start = Instant::now();
        let mut idx = index.write();
        for p in pods {
            IndexNamespacedResource::apply(&mut *idx, p);
        }
        for s in svcs {
            IndexNamespacedResource::apply(&mut *idx, s);
        }
        for s in slices {
            IndexNamespacedResource::apply(&mut *idx, s);
        }
        drop(idx);
        apply_time += start.elapsed();
    }
    {
        let idx = index.read();
        let metrics = idx.metrics();
        assert_eq!(metrics.services(), SERVICES as i64);
        assert_eq!(metrics.endpoint_slices(), SERVICES as i64);
        assert_eq!(
            metrics.pods(),
            (SERVICES * ENDPOINTS_PER_SERVICE) as i64,
            "every pod indexed"
        );
    }
    let index_rss = rss_mib();

    let metrics = DestinationMetrics::register(&mut Registry::default());
    let (_stop, stopping) = Stopping::new();
    let service = DestinationService::new(index.clone(), stopping, metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(1_000))
            .add_service(service.into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    println!(
        "ready {addr} {start_rss} {index_rss} {}",
        apply_time.as_secs_f64()
    );
    let mut slices: HashMap<usize, SliceState> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rss"] => println!("{}", rss_mib()),
            ["streams"] => println!("{}", metrics.open_streams(DestinationRpc::Get)),
            ["updates"] => println!("{}", metrics.updates(DestinationRpc::Get)),
            ["pod", g, i] => {
                let (g, i): (usize, usize) = (g.parse().unwrap(), i.parse().unwrap());
                let generation = slices.entry(g).or_default().generations[i] + 1;
                IndexNamespacedResource::apply(&mut *index.write(), pod(g, i, generation));
                println!("applied");
            }
            ["change", g, i, how] => {
                let (g, i): (usize, usize) = (g.parse().unwrap(), i.parse().unwrap());
                let state = slices.entry(g).or_default();
                match *how {
                    "unready" => state.unready = Some(i),
                    "ready" => state.unready = None,
                    "replace" => state.generations[i] += 1,
                    _ => panic!("unknown change {line:?}"),
                }
                let slice = slice(g, state);
                IndexNamespacedResource::apply(&mut *index.write(), slice);
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

/// The kind of a message received on a `Get` stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Received {
    Add,
    Remove,
    NoEndpoints,
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
    let ["ready", addr, start_rss, index_rss, apply_secs] = words.as_slice() else {
        panic!("the server process said {ready:?}");
    };
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let start_rss: f64 = start_rss.parse().unwrap();
    let index_rss: f64 = index_rss.parse().unwrap();
    let apply_time = Duration::from_secs_f64(apply_secs.parse().unwrap());
    let client_start_rss = rss_mib();

    // Stream s watches Service s / STREAMS_PER_SERVICE over connection s % CONNECTIONS; each
    // received message reports (s, what, when). The first message of every stream must hold the
    // Service's 10 endpoints, 5 of them (the meshed pods) with an identity.
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<(usize, Received, Instant)>();
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
        let mut client = DestinationClient::new(channels[s % CONNECTIONS].clone());
        let arrived = arrived.clone();
        let g = s / STREAMS_PER_SERVICE;
        let request = GetDestination {
            scheme: "k8s".into(),
            path: format!("{}.{}.svc.cluster.local:80", svc_name(g), ns(g)),
            context_token: String::new(),
        };
        tokio::spawn(async move {
            let mut stream = client.get(request).await.unwrap().into_inner();
            let mut first = true;
            while let Some(message) = stream.message().await.unwrap() {
                let when = Instant::now();
                let what = match message.update.unwrap() {
                    update::Update::Add(set) => {
                        if first {
                            assert_eq!(set.addrs.len(), ENDPOINTS_PER_SERVICE);
                            let meshed = set.addrs.iter().filter(|a| a.tls_identity.is_some());
                            assert_eq!(meshed.count(), ENDPOINTS_PER_SERVICE / 2);
                        }
                        Received::Add
                    }
                    update::Update::Remove(_) => Received::Remove,
                    update::Update::NoEndpoints(_) => Received::NoEndpoints,
                };
                assert!(
                    !first || what == Received::Add,
                    "stream {s} began with {what:?}"
                );
                first = false;
                let _ = arrived.send((s, what, when));
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
    assert_eq!(server_process.ask("streams").await, STREAMS.to_string());

    // Changes 0..100 go to 100 different Services: an even one makes endpoint c % 10 not ready,
    // an odd one replaces it with a new pod. Changes 100..200 go to the same Services again: the
    // endpoint made not ready is ready again, the replaced one is replaced once more.
    let mut per_stream = Vec::new();
    let mut per_change = Vec::new();
    let mut by_kind: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut expected_messages = STREAMS;
    for c in 0..CHANGES {
        let first_pass = c % CHANGED_SERVICES;
        let g = (first_pass * 37) % SERVICES;
        let i = first_pass % ENDPOINTS_PER_SERVICE;
        let how = match (c < CHANGED_SERVICES, first_pass % 2) {
            (true, 0) => "unready",
            (false, 0) => "ready",
            _ => "replace",
        };
        let expect: &[Received] = match how {
            "unready" => &[Received::Remove],
            "ready" => &[Received::Add],
            _ => &[Received::Add, Received::Remove],
        };
        if how == "replace" {
            assert_eq!(server_process.ask(&format!("pod {g} {i}")).await, "applied");
        }
        let affected = g * STREAMS_PER_SERVICE..(g + 1) * STREAMS_PER_SERVICE;
        let mut got: HashMap<usize, Vec<Received>> = HashMap::new();
        let changed = Instant::now();
        assert_eq!(
            server_process.ask(&format!("change {g} {i} {how}")).await,
            "changed"
        );
        let mut last = Duration::ZERO;
        for _ in 0..STREAMS_PER_SERVICE * expect.len() {
            let (s, what, when) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("every affected stream receives the change")
                .unwrap();
            assert!(
                affected.contains(&s),
                "stream {s} was not affected by change {c}"
            );
            let received = got.entry(s).or_default();
            received.push(what);
            // A stream has the change once it has received all of its messages.
            if received.len() == expect.len() {
                assert_eq!(received, expect, "stream {s}, change {c} ({how})");
                let delay = when - changed;
                per_stream.push(delay);
                by_kind.entry(how).or_default().push(delay);
                last = last.max(delay);
            }
        }
        expected_messages += STREAMS_PER_SERVICE * expect.len();
        per_change.push(last);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        arrivals.try_recv().is_err(),
        "no stream received an unrelated message"
    );
    assert_eq!(
        server_process.ask("updates").await,
        expected_messages.to_string(),
        "the server sent only the expected messages"
    );
    per_stream.sort();
    per_change.sort();

    println!(
        "Services {SERVICES} (in {NAMESPACES} namespaces), EndpointSlices {SERVICES}, endpoints and pods {} (half meshed), open Get streams {STREAMS} ({STREAMS_PER_SERVICE} per Service) over {CONNECTIONS} connections",
        SERVICES * ENDPOINTS_PER_SERVICE
    );
    println!("applying the initial objects to the index: {apply_time:?}");
    println!("server RSS: start {start_rss:.1} MiB, index built {index_rss:.1} MiB, with streams {streams_rss:.1} MiB");
    println!(
        "server memory per open stream (incl. the first update sent): {:.1} KiB",
        (streams_rss - index_rss) * 1024.0 / STREAMS as f64
    );
    println!(
        "client RSS (the benchmark's clients, not the server): {client_start_rss:.1} MiB before the streams, {client_streams_rss:.1} MiB with them"
    );
    println!("opening {STREAMS} streams and receiving their first update: {opened_in:?}");
    println!(
        "messages: {expected_messages} sent by the server, all expected ({STREAMS} first updates, the rest to affected streams only)"
    );
    println!(
        "EndpointSlice change -> affected stream has the update ({} samples, {STREAMS_PER_SERVICE} streams per change): p50 {:?}, p99 {:?}, max {:?}",
        per_stream.len(),
        percentile(&per_stream, 0.50),
        percentile(&per_stream, 0.99),
        per_stream[per_stream.len() - 1]
    );
    for how in ["unready", "ready", "replace"] {
        let mut delays = by_kind.remove(how).unwrap();
        delays.sort();
        println!(
            "  of which {how} ({} samples): p50 {:?}, p99 {:?}, max {:?}",
            delays.len(),
            percentile(&delays, 0.50),
            percentile(&delays, 0.99),
            delays[delays.len() - 1]
        );
    }
    println!(
        "EndpointSlice change -> every affected stream has it ({CHANGES} changes): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&per_change, 0.50),
        percentile(&per_change, 0.99),
        per_change[per_change.len() - 1]
    );
}
