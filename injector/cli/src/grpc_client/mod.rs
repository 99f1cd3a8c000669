//! The connection of `weft policy` and `weft endpoints` to the controller's gRPC API: finds the
//! controller (or dials `--addr`), port-forwards to a ready controller pod, and speaks TLS 1.3
//! (ALPN `h2`) verified against the mesh's trust anchors for the controller's identity;
//! plaintext only to a loopback `--addr`. The result is a tonic [`Channel`] any client of the
//! controller's APIs can use.

use crate::check::{fetch, Installation};
use anyhow::{anyhow, bail, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod},
};
use kube::api::{Api, ListParams};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::{future::Future, net::IpAddr, pin::Pin, sync::Arc, time::Duration};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{rustls, TlsConnector};
pub use tonic::transport::Channel;

pub mod discover;

/// How long connecting (TCP or port-forward, and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a unary call (`GetPort`), or the first message of a stream, may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the controller, plaintext or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Box<dyn Io>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = std::io::Result<T>> + Send>>;
/// What a port-forward's error channel reports (e.g. nothing listens on the port in the pod);
/// `None` when it closed without a message.
type ForwardError = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// How to reach the controller's gRPC port.
#[derive(Clone)]
enum Dial {
    Tcp {
        host: String,
        port: u16,
    },
    PortForward {
        pods: Api<Pod>,
        namespace: String,
        pod: String,
        port: u16,
    },
}

impl Dial {
    fn describe(&self) -> String {
        match self {
            Dial::Tcp { host, port } => format!("{host}:{port}"),
            Dial::PortForward {
                namespace,
                pod,
                port,
                ..
            } => {
                format!("pod {namespace}/{pod} port {port} (port-forward)")
            }
        }
    }

    /// A new connection, and for a port-forward, its error report.
    fn connect(&self) -> BoxFuture<(BoxIo, Option<ForwardError>)> {
        let dial = self.clone();
        Box::pin(async move {
            match dial {
                Dial::Tcp { host, port } => {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let tcp = tokio::net::TcpStream::connect((host, port))
                        .await
                        .map_err(|e| io_error(format!("cannot connect to {host}:{port}: {e}")))?;
                    // gRPC messages are small; do not hold them back.
                    let _ = tcp.set_nodelay(true);
                    Ok((Box::new(tcp) as BoxIo, None))
                }
                Dial::PortForward {
                    pods, pod, port, ..
                } => {
                    let mut forwarder = pods.portforward(&pod, &[port]).await.map_err(|e| {
                        io_error(format!("cannot port-forward to pod {pod} port {port}: {e}"))
                    })?;
                    let stream = forwarder.take_stream(port).ok_or_else(|| {
                        io_error(format!("the port-forward to pod {pod} has no port {port}"))
                    })?;
                    let error = forwarder
                        .take_error(port)
                        .map(|e| Box::pin(e) as ForwardError);
                    Ok((Box::new(stream) as BoxIo, error))
                }
            }
        })
    }
}

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Where the controller is and how to talk to it.
pub struct Connection {
    dial: Dial,
    /// The TLS configuration and the name the server's certificate must have; `None` for
    /// plaintext.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Connection {
    /// Where the controller is and how it is spoken to, for messages.
    pub fn describe(&self) -> String {
        match &self.tls {
            Some((_, name)) => format!(
                "{} (TLS, server name {})",
                self.dial.describe(),
                name.to_str()
            ),
            None => format!("{} (plaintext)", self.dial.describe()),
        }
    }

    /// A tonic channel whose every connection is made by [`Dial::connect`] and, with TLS,
    /// a handshake. Connects once before returning, so an unreachable or untrusted server fails
    /// here; the error names `api` (e.g. "policy API").
    pub async fn channel(&self, api: &str) -> Result<Channel> {
        let dial = self.dial.clone();
        let tls = self.tls.clone();
        let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let connect = dial.connect();
            let tls = tls.clone();
            async move {
                let (io, forward_error) = connect.await?;
                let io = match tls {
                    None => io,
                    Some((config, name)) => {
                        let shown = name.to_str().into_owned();
                        match TlsConnector::from(config).connect(name, io).await {
                            Ok(tls) => Box::new(tls) as BoxIo,
                            Err(e) => {
                                // Through a port-forward, a closed connection usually means the
                                // API server could not reach the pod's port: say why.
                                let reason = match forward_error {
                                    Some(report) => {
                                        tokio::time::timeout(Duration::from_secs(1), report)
                                            .await
                                            .ok()
                                            .flatten()
                                            .map(|r| format!(" (the port-forward reported: {r})"))
                                    }
                                    None => None,
                                };
                                return Err(io_error(format!(
                                    "TLS handshake with {shown} failed: {e}{}",
                                    reason.unwrap_or_default()
                                )));
                            }
                        }
                    }
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        });
        // The URI only sets the requests' :authority; the connector decides where they go.
        tonic::transport::Endpoint::from_static("http://weft-controller")
            .connect_timeout(CONNECT_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .map_err(|e| anyhow!("{}", error_chain(&e)))
            .with_context(|| format!("cannot reach the controller's {api} at {}", self.describe()))
    }
}

/// The messages of an error and its sources, without tonic's bare "transport error".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![];
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.len() > 1 && parts[0] == "transport error" {
        parts.remove(0);
    }
    parts.join(": ")
}

/// A TLS 1.3 client configuration (ALPN `h2`) that trusts only the PEM `anchors`.
pub fn tls_config(anchors: &str, source: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(anchors.as_bytes()) {
        let cert = cert.with_context(|| format!("cannot read the trust anchors in {source}"))?;
        roots.add(cert).with_context(|| {
            format!("a trust anchor in {source} is not a usable CA certificate")
        })?;
    }
    if roots.is_empty() {
        bail!("{source} holds no PEM certificates (-----BEGIN CERTIFICATE-----)");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The installation's objects, read once when a flag leaves something to find.
struct Cluster {
    client: kube::Client,
    inst: Installation,
    deployment: Option<Deployment>,
}

impl Cluster {
    async fn connect(args: &ConnectArgs) -> Result<Self> {
        let (client, _) = fetch::connect(&args.cluster).await.map_err(|check| {
            let fix = check.fix.unwrap_or_default();
            anyhow!("{}; {fix}", check.message)
        })?;
        Ok(Self {
            client,
            inst: args.cluster.installation(),
            deployment: None,
        })
    }

    async fn controller(&mut self) -> Result<discover::ControllerGrpc> {
        if self.deployment.is_none() {
            let ns = &self.inst.namespace;
            let name = self.inst.deployment();
            let deployment = Api::<Deployment>::namespaced(self.client.clone(), ns)
                .get_opt(name)
                .await
                .map_err(|e| anyhow!("{}", fetch::describe(e)))
                .with_context(|| format!("cannot read Deployment {ns}/{name}"))?
                .ok_or_else(|| {
                    anyhow!(
                        "there is no Deployment {ns}/{name}: is Weft installed there? Set \
                         --namespace and --release (or --fullname) to the installation's, or \
                         name the controller with --addr"
                    )
                })?;
            self.deployment = Some(deployment);
        }
        let deployment = self
            .deployment
            .as_ref()
            .context("the Deployment was read")?;
        discover::controller_grpc(deployment).map_err(|e| anyhow!(e))
    }

    async fn trust_anchors(&self) -> Result<String> {
        let ns = &self.inst.namespace;
        let name = self.inst.trust_anchors_config_map();
        let config_map = Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(&name)
            .await
            .map_err(|e| anyhow!("{}", fetch::describe(e)))
            .with_context(|| format!("cannot read the trust anchors ConfigMap {ns}/{name}"))?
            .ok_or_else(|| {
                anyhow!(
                    "there is no ConfigMap {ns}/{name} with the mesh's trust anchors: set \
                     --namespace and --release to the installation's, or give --trust-anchors"
                )
            })?;
        discover::trust_anchors(&config_map).map_err(|e| anyhow!(e))
    }

    async fn ready_pod(&mut self, selector: &str) -> Result<String> {
        let ns = &self.inst.namespace;
        let pods = Api::<Pod>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| anyhow!("{}", fetch::describe(e)))
            .with_context(|| format!("cannot list the controller's pods in {ns}"))?;
        discover::pick_ready_pod(&pods.items).ok_or_else(|| {
            anyhow!(
                "no controller pod in {ns} is ready ({} found with {selector}): see \
                 `kubectl get pods -n {ns} -l {selector}` and `weft check`",
                pods.items.len()
            )
        })
    }
}

/// Works out where the controller is and how to verify it, reading the installation only for
/// what the flags leave open.
pub async fn connection(args: &ConnectArgs) -> Result<Connection> {
    let needs_cluster = args.addr.is_none()
        || (!args.plaintext && (args.trust_anchors.is_none() || args.server_name.is_none()));
    let mut cluster = match needs_cluster {
        true => Some(Cluster::connect(args).await?),
        false => None,
    };

    let dial = match &args.addr {
        Some(addr) => {
            let (host, port) = split_addr(addr).map_err(|e| anyhow!(e))?;
            if args.plaintext && !is_loopback_host(host) {
                bail!(
                    "--plaintext is allowed only with a loopback --addr (127.0.0.1, ::1, \
                     localhost), and {host} is not one: the controller serves plaintext only \
                     on loopback (--grpc-plaintext); drop --plaintext to use TLS"
                );
            }
            Dial::Tcp {
                host: host.to_string(),
                port,
            }
        }
        None => {
            if args.plaintext {
                bail!("--plaintext needs --addr (a loopback address): a controller found in the cluster serves TLS");
            }
            let cluster = cluster.as_mut().context("a cluster connection")?;
            let grpc = cluster.controller().await?;
            let pod = cluster.ready_pod(&grpc.selector).await?;
            Dial::PortForward {
                pods: Api::namespaced(cluster.client.clone(), &cluster.inst.namespace),
                namespace: cluster.inst.namespace.clone(),
                pod,
                port: grpc.port,
            }
        }
    };
    if args.plaintext {
        return Ok(Connection { dial, tls: None });
    }

    let (anchors, source) = match &args.trust_anchors {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --trust-anchors {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let cluster = cluster.as_ref().context("a cluster connection")?;
            let source = format!(
                "ConfigMap {}/{}",
                cluster.inst.namespace,
                cluster.inst.trust_anchors_config_map()
            );
            (cluster.trust_anchors().await?, source)
        }
    };
    let config = tls_config(&anchors, &source)?;
    let name = match &args.server_name {
        Some(name) => name.clone(),
        None => {
            let cluster = cluster.as_mut().context("a cluster connection")?;
            cluster.controller().await?.server_name
        }
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| anyhow!("--server-name {name:?} is not a DNS name"))?;
    Ok(Connection {
        dial,
        tls: Some((config, server_name)),
    })
}

/// Whether `--plaintext` may be used with `host`: only loopback (`127.0.0.0/8`, `::1`,
/// `localhost`), as the controller's `--grpc-plaintext`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6).
pub fn split_addr(addr: &str) -> Result<(&str, u16), String> {
    let invalid = || format!("--addr {addr:?} is not HOST:PORT (IPv6 as [ADDR]:PORT)");
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err(invalid());
    }
    let port = parse_port(port).map_err(|e| format!("--addr {addr:?}: {e}"))?;
    Ok((host, port))
}

/// How to reach the controller's gRPC API: shared by `weft policy` and `weft endpoints`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The controller's gRPC address, HOST:PORT (e.g. 127.0.0.1:8090 after `kubectl
    /// port-forward deploy/weft -n weft 8090`), instead of port-forwarding to a controller pod
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,

    /// Speak plaintext gRPC, for a controller run with --grpc-plaintext; only with a loopback
    /// --addr
    #[arg(long, requires = "addr", conflicts_with_all = ["trust_anchors", "server_name"])]
    pub plaintext: bool,

    /// PEM file of the mesh's trust anchors to verify the controller's certificate with
    /// (default: the installation's ConfigMap <fullname>-identity-trust-anchors)
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: Option<std::path::PathBuf>,

    /// The name the controller's certificate must have (default: its identity,
    /// <sa>.<ns>.serviceaccount.identity.<ns>.<trust-domain>, from the Deployment's args)
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    #[command(flatten)]
    pub cluster: crate::check::ClusterArgs,
}

/// A port number, 1-65535 (clap value parser for PORT).
pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(format!("port {port} is out of range (1-65535)")),
        Err(_) => Err(format!("{s:?} is not a port number (1-65535)")),
    }
}
