//! `weft policy` over TLS against a stand-in `InboundServerPolicies` server that serves TLS 1.3
//! with ALPN `h2` like the controller's: the client verifies the certificate against
//! --trust-anchors for --server-name, and refuses another CA or another name.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use futures::Stream;
use linkerd2_proxy_api::inbound::{
    self as proto,
    inbound_server_policies_server::{InboundServerPolicies, InboundServerPoliciesServer},
    proxy_protocol::{Kind, Opaque},
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    },
    server::TlsStream,
    TlsAcceptor,
};
use weft_cli::{
    cli::{Cli, Command},
    policy_cli::{client, PolicyArgs},
};

const NAME: &str = "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

/// A CA and a certificate for `name` signed by it.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn opaque(name: &str) -> proto::Server {
    proto::Server {
        protocol: Some(proto::ProxyProtocol {
            kind: Some(Kind::Opaque(Opaque {})),
        }),
        server_ips: vec![],
        authorizations: vec![],
        labels: HashMap::from([
            ("group".into(), "policy.weft.dev".into()),
            ("kind".into(), "server".into()),
            ("name".into(), name.into()),
        ]),
    }
}

/// Knows one pod, `emojivoto/web`; its watch sends two policies and ends.
struct Fixed;

type Policies = Pin<Box<dyn Stream<Item = Result<proto::Server, tonic::Status>> + Send>>;

fn known(spec: &proto::PortSpec) -> Result<(), tonic::Status> {
    if spec.workload == r#"{"ns":"emojivoto","pod":"web"}"# && spec.port == 6379 {
        Ok(())
    } else {
        Err(tonic::Status::not_found(format!(
            "pod {} not found",
            spec.workload
        )))
    }
}

#[tonic::async_trait]
impl InboundServerPolicies for Fixed {
    async fn get_port(
        &self,
        request: tonic::Request<proto::PortSpec>,
    ) -> Result<tonic::Response<proto::Server>, tonic::Status> {
        known(request.get_ref())?;
        Ok(tonic::Response::new(opaque("redis")))
    }

    type WatchPortStream = Policies;

    async fn watch_port(
        &self,
        request: tonic::Request<proto::PortSpec>,
    ) -> Result<tonic::Response<Policies>, tonic::Status> {
        known(request.get_ref())?;
        let messages = vec![Ok(opaque("redis")), Ok(opaque("redis-v2"))];
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(
            messages,
        ))))
    }
}

/// A server-side TLS connection, as tonic's incoming stream wants it.
struct Tls(TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for Tls {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Serves [`Fixed`] over TLS 1.3 (ALPN h2) with `pki`'s certificate; failed handshakes are
/// dropped, as the controller does.
async fn serve(pki: &Pki) -> SocketAddr {
    let certs = vec![CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = futures::stream::unfold((listener, acceptor), |(listener, acceptor)| async {
        loop {
            let (tcp, _) = listener.accept().await.ok()?;
            if let Ok(tls) = acceptor.accept(tcp).await {
                return Some((Ok::<_, std::io::Error>(Tls(tls)), (listener, acceptor)));
            }
        }
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InboundServerPoliciesServer::new(Fixed))
            .serve_with_incoming(incoming),
    );
    addr
}

fn args(argv: &[&str]) -> PolicyArgs {
    let cli = Cli::try_parse_from([&["weft", "policy"], argv].concat()).unwrap();
    match cli.command {
        Command::Policy(args) => *args,
        other => panic!("not weft policy: {other:?}"),
    }
}

/// Runs `weft policy` and returns what it printed.
async fn policy(argv: &[&str]) -> anyhow::Result<String> {
    let mut out = String::new();
    client::run(&args(argv), |doc| {
        out.push_str(doc);
        Ok(())
    })
    .await?;
    Ok(out)
}

#[tokio::test]
async fn verifies_the_controller_for_its_identity() {
    let server = pki(NAME);
    let addr = serve(&server).await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("ca.pem");
    std::fs::write(&anchors, &server.ca_pem).unwrap();
    let anchors = anchors.to_str().unwrap();
    let tls = ["--addr", &addr, "--trust-anchors", anchors];

    let printed = policy(
        &[
            &["emojivoto/web", "6379"],
            &tls[..],
            &["--server-name", NAME],
        ]
        .concat(),
    )
    .await
    .unwrap();
    assert_eq!(
        printed,
        "server:\n  group: policy.weft.dev\n  kind: server\n  name: redis\nprotocol:\n  kind: opaque\nauthorizations: []\n"
    );

    // --watch: a document per message, each after `---`, until the stream ends.
    let watched = policy(
        &[
            &["emojivoto/web", "6379", "--watch"],
            &tls[..],
            &["--server-name", NAME],
        ]
        .concat(),
    )
    .await
    .unwrap();
    assert_eq!(watched.matches("---\n").count(), 2, "{watched}");
    assert!(watched.starts_with("---\nserver:\n"), "{watched}");
    assert!(watched.contains("name: redis-v2\n"), "{watched}");

    // NotFound names the pod.
    let error = policy(
        &[
            &["emojivoto/nope", "6379"],
            &tls[..],
            &["--server-name", NAME],
        ]
        .concat(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").starts_with("pod emojivoto/nope is not known to the policy index"),
        "{error:#}"
    );

    // Another name: the handshake fails, and the error names the address and the name.
    let other = "web.emojivoto.serviceaccount.identity.weft.cluster.local";
    let error = policy(
        &[
            &["emojivoto/web", "6379"],
            &tls[..],
            &["--server-name", other],
        ]
        .concat(),
    )
    .await
    .unwrap_err();
    let error = format!("{error:#}");
    assert!(
        error.contains(&format!(
            "cannot reach the controller's policy API at {addr} (TLS, server name {other})"
        )) && error.contains("TLS handshake with")
            && error.contains("certificate not valid for name"),
        "{error}"
    );

    // Another CA: refused too.
    std::fs::write(dir.path().join("ca.pem"), pki(NAME).ca_pem).unwrap();
    let error = policy(
        &[
            &["emojivoto/web", "6379"],
            &tls[..],
            &["--server-name", NAME],
        ]
        .concat(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{error:#}").contains("invalid peer certificate"),
        "{error:#}"
    );
    eprintln!("another CA: {error:#}");

    // Plaintext to a TLS server is refused by the server, not silently downgraded.
    let error = policy(&["emojivoto/web", "6379", "--addr", &addr, "--plaintext"])
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains(&format!("{addr} (plaintext)")),
        "{error:#}"
    );
}

#[test]
fn trust_anchors_must_be_pem_certificates() {
    let error = client::tls_config("not a certificate", "anchors.pem").unwrap_err();
    assert_eq!(
        error.to_string(),
        "anchors.pem holds no PEM certificates (-----BEGIN CERTIFICATE-----)"
    );
    assert!(client::tls_config(&pki(NAME).ca_pem, "anchors.pem").is_ok());
}
