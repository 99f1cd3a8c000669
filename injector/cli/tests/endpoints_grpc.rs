//! The built `weft endpoints` end to end, over plaintext gRPC on loopback, against a stand-in
//! `Destination` server: the request it sends, the table, the watch's change lines, and the
//! refusals' exit status.
#![allow(clippy::unwrap_used)]

use futures::Stream;
use linkerd2_proxy_api::{
    destination::{
        self as proto,
        destination_server::{Destination, DestinationServer},
        protocol_hint::{self, Protocol},
        tls_identity::{DnsLikeIdentity, Strategy},
        update,
    },
    net::TcpAddress,
};
use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    process::{Command, Output},
};

const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.weft.cluster.local";

fn tcp(addr: &str) -> TcpAddress {
    TcpAddress::from(addr.parse::<SocketAddr>().unwrap())
}

fn endpoint(addr: &str, pod: Option<&str>) -> proto::WeightedAddr {
    let meshed = pod.is_some();
    proto::WeightedAddr {
        addr: Some(tcp(addr)),
        weight: 10000,
        metric_labels: pod
            .map(|pod| {
                HashMap::from([
                    ("pod".to_string(), pod.to_string()),
                    ("serviceaccount".to_string(), "web".to_string()),
                ])
            })
            .unwrap_or_default(),
        tls_identity: meshed.then(|| proto::TlsIdentity {
            server_name: None,
            strategy: Some(Strategy::DnsLikeIdentity(DnsLikeIdentity {
                name: IDENTITY.into(),
            })),
        }),
        protocol_hint: meshed.then_some(proto::ProtocolHint {
            opaque_transport: None,
            protocol: Some(Protocol::H2(protocol_hint::H2 {})),
        }),
        ..Default::default()
    }
}

fn add(addrs: Vec<proto::WeightedAddr>) -> proto::Update {
    proto::Update {
        update: Some(update::Update::Add(proto::WeightedAddrSet {
            addrs,
            metric_labels: HashMap::new(),
        })),
    }
}

fn message(update: update::Update) -> Result<proto::Update, tonic::Status> {
    Ok(proto::Update {
        update: Some(update),
    })
}

type Updates = Pin<Box<dyn Stream<Item = Result<proto::Update, tonic::Status>> + Send>>;
type Profiles =
    Pin<Box<dyn Stream<Item = Result<proto::DestinationProfile, tonic::Status>> + Send>>;

/// Knows `web.emojivoto` port 80 (in `cluster.local` and `corp`): the current endpoints, then a
/// removal, an addition and NoEndpoints, and the stream ends. `gone.emojivoto` does not exist;
/// `old.emojivoto` answers as a controller without the API.
struct Fixed;

#[tonic::async_trait]
impl Destination for Fixed {
    type GetStream = Updates;

    async fn get(
        &self,
        request: tonic::Request<proto::GetDestination>,
    ) -> Result<tonic::Response<Updates>, tonic::Status> {
        let dst = request.into_inner();
        if dst.scheme != "k8s" || !dst.context_token.is_empty() {
            return Err(tonic::Status::invalid_argument(format!(
                "unexpected request {dst:?}"
            )));
        }
        let messages = match dst.path.as_str() {
            "web.emojivoto.svc.cluster.local:80" | "web.emojivoto.svc.corp:80" => vec![
                Ok(add(vec![
                    endpoint("10.42.0.12:8080", Some("web-2")),
                    endpoint("10.42.0.9:8080", Some("web-1")),
                    endpoint("10.42.0.30:8080", None),
                ])),
                message(update::Update::Remove(proto::AddrSet {
                    addrs: vec![tcp("10.42.0.30:8080")],
                })),
                Ok(add(vec![endpoint("10.42.0.31:8080", Some("web-3"))])),
                message(update::Update::NoEndpoints(proto::NoEndpoints {
                    exists: true,
                })),
            ],
            "gone.emojivoto.svc.cluster.local:80" => {
                vec![message(update::Update::NoEndpoints(proto::NoEndpoints {
                    exists: false,
                }))]
            }
            "old.emojivoto.svc.cluster.local:80" => {
                return Err(tonic::Status::unimplemented("unknown service"))
            }
            path => {
                return Err(tonic::Status::invalid_argument(format!(
                    "invalid authority {path}"
                )))
            }
        };
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(
            messages,
        ))))
    }

    type GetProfileStream = Profiles;

    async fn get_profile(
        &self,
        _: tonic::Request<proto::GetDestination>,
    ) -> Result<tonic::Response<Profiles>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
}

/// Serves [`Fixed`] in plaintext on a loopback port, on a thread of its own.
fn serve() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming = futures::stream::unfold(listener, |listener| async {
                let (tcp, _) = listener.accept().await.ok()?;
                Some((Ok::<_, std::io::Error>(tcp), listener))
            });
            tonic::transport::Server::builder()
                .add_service(DestinationServer::new(Fixed))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    addr
}

fn weft(addr: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([&["endpoints", "--addr", addr, "--plaintext"], args].concat())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn prints_the_endpoints_and_watches_them() {
    let addr = serve();
    let pad = " ".repeat(IDENTITY.len() - "IDENTITY".len() + 2);
    let table = format!(
        "\
ADDRESS          POD    SERVICEACCOUNT  IDENTITY{pad}HINT
10.42.0.9:8080   web-1  web             {IDENTITY}  h2
10.42.0.12:8080  web-2  web             {IDENTITY}  h2
10.42.0.30:8080  -      -               - (not meshed){}  -
",
        " ".repeat(IDENTITY.len() - "- (not meshed)".len())
    );

    // The first message only, as a table sorted by address.
    for args in [
        &["web.emojivoto:80"][..],
        &["web.emojivoto.svc.cluster.local:80"][..],
        &["web.emojivoto:80", "--cluster-domain", "corp"][..],
    ] {
        let out = weft(&addr, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), table, "{args:?}");
    }

    // --watch: the table, then a line per change, until the stream ends.
    let out = weft(&addr, &["web.emojivoto:80", "--watch"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let changes = format!(
        "\
- 10.42.0.30:8080
+ 10.42.0.31:8080  web-3  web  {IDENTITY}  h2
- 10.42.0.9:8080
- 10.42.0.12:8080
- 10.42.0.31:8080
no endpoints (the Service web.emojivoto exists)
"
    );
    assert_eq!(text(&out.stdout), format!("{table}{changes}"));
    assert!(
        text(&out.stderr).contains("the controller ended the watch"),
        "{}",
        text(&out.stderr)
    );

    let out = weft(&addr, &["gone.emojivoto:80"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Service gone.emojivoto has no port 80 or does not exist\n"
    );
}

#[test]
fn refusals_exit_1_without_output() {
    let addr = serve();
    for (arg, reason) in [
        (
            "nope.emojivoto:80",
            "the controller refused to resolve nope.emojivoto.svc.cluster.local:80: invalid authority nope.emojivoto.svc.cluster.local:80",
        ),
        (
            "old.emojivoto:80",
            "the controller does not serve the destination API (unknown service): it is older than this weft CLI",
        ),
    ] {
        let out = weft(&addr, &[arg]);
        assert_eq!(out.status.code(), Some(1), "{arg}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{arg}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{arg}: {stderr}");
        assert!(stderr.contains(&format!("(controller at {addr} (plaintext))")), "{stderr}");
    }
}
