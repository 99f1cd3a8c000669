//! The real `weft-controller` binary, run as a child process.

use crate::pki::{Pki, PkiFiles};
use anyhow::{bail, Context, Result};
use linkerd2_proxy_api::inbound::{
    self, inbound_server_policies_client::InboundServerPoliciesClient,
};
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The `PortSpec` a proxy of `namespace/pod` sends for `port`.
pub fn port_spec(namespace: &str, pod: &str, port: u16) -> inbound::PortSpec {
    inbound::PortSpec {
        workload: serde_json::json!({"ns": namespace, "pod": pod}).to_string(),
        port: port.into(),
    }
}

#[derive(Debug)]
pub struct Controller {
    child: Child,
    pub admin_addr: SocketAddr,
    pub server_addr: SocketAddr,
    /// The address of the controller's gRPC server (the proxies' APIs), in plaintext.
    pub grpc_addr: SocketAddr,
    pub pki: Pki,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Builds `weft-controller` (a no-op when it is up to date) and returns its path.
pub fn build() -> Result<PathBuf> {
    crate::cargo_binary(
        "weft-policy-controller",
        "weft-controller",
        "WEFT_CONTROLLER_BIN",
    )
}

/// Writes a self-signed ECDSA P-256 CA, the identity issuer and trust anchor at once, as
/// `issuer.crt` and `issuer.key` under `dir`; returns the certificate's path.
fn write_identity_issuer(dir: &Path) -> Result<PathBuf> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "identity.weft-e2e-system.cluster.local",
    );
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let issuer = params.self_signed(&key)?;
    let cert = dir.join("issuer.crt");
    std::fs::write(&cert, issuer.pem())?;
    std::fs::write(dir.join("issuer.key"), key.serialize_pem())?;
    Ok(cert)
}

pub fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl Controller {
    /// Starts the controller against `kubeconfig` with fresh certificates and free ports.
    pub fn start(binary: &Path, kubeconfig: &Path, extra_args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let pki = Pki::generate("weft-controller")?;
        let PkiFiles { cert, key } = pki.write(dir.path())?;
        let admin_addr = free_addr()?;
        let server_addr = free_addr()?;
        let grpc_addr = free_addr()?;
        let identity = write_identity_issuer(dir.path())?;
        let log = dir.path().join("controller.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--admin-addr={admin_addr}"))
            .arg(format!("--server-addr={server_addr}"))
            .arg(format!("--server-tls-key={}", key.display()))
            .arg(format!("--server-tls-certs={}", cert.display()))
            .arg("--control-plane-namespace=weft-e2e-system")
            // Plaintext on loopback, so the tests' gRPC clients need no TLS settings; proxies
            // in pods always get TLS (the node suite).
            .arg(format!("--grpc-addr={grpc_addr}"))
            .arg("--grpc-plaintext")
            .arg(format!(
                "--identity-trust-anchors-file={}",
                identity.display()
            ))
            .arg(format!("--identity-issuer-certs={}", identity.display()))
            .arg(format!(
                "--identity-issuer-key={}",
                identity.with_file_name("issuer.key").display()
            ))
            .arg("--log-level=info,weft=debug,kube=warn")
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut controller = Self {
            child,
            admin_addr,
            server_addr,
            grpc_addr,
            pki,
            log,
            _dir: dir,
        };
        controller.wait_live()?;
        Ok(controller)
    }

    fn wait_live(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "weft-controller exited early ({status}):\n{}",
                    self.log_tail()
                );
            }
            if std::net::TcpStream::connect(self.admin_addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "weft-controller did not listen on {} within 30s:\n{}",
            self.admin_addr,
            self.log_tail()
        )
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if matches!(self.admin_get("/ready").await, Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "weft-controller was not ready within {timeout:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client of the proxies' inbound policy API (`InboundServerPolicies`) on
    /// [`grpc_addr`](Self::grpc_addr), in plaintext (the harness runs the controller with
    /// `--grpc-plaintext` on loopback).
    pub async fn policy_client(
        &self,
    ) -> Result<InboundServerPoliciesClient<tonic::transport::Channel>> {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
                .connect_timeout(Duration::from_secs(5));
        Ok(InboundServerPoliciesClient::new(
            endpoint.connect().await.with_context(|| {
                format!("connecting to the policy gRPC API at {}", self.grpc_addr)
            })?,
        ))
    }

    /// `GetPort` for a pod's port: `Ok(Err(status))` when the controller refused (e.g. NotFound
    /// before it has indexed the pod).
    pub async fn inbound_policy(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<std::result::Result<inbound::Server, tonic::Status>> {
        let mut client = self.policy_client().await?;
        Ok(client
            .get_port(port_spec(namespace, pod, port))
            .await
            .map(tonic::Response::into_inner))
    }

    pub async fn admin_get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.admin_addr, path).await
    }

    /// Posts a request to the controller's HTTPS server, as the API server does.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, bytes::Bytes)> {
        https_post(
            self.server_addr,
            self.pki.client_config()?,
            "localhost",
            path,
            body,
        )
        .await
    }

    /// Lines of the controller's log that contain every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Result<Vec<String>> {
        let log = std::fs::read_to_string(&self.log)
            .with_context(|| format!("reading {}", self.log.display()))?;
        Ok(log
            .lines()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_string)
            .collect())
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (as the kubelet does) and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.signal()?;
        self.wait_exit(timeout)
    }

    /// Sends SIGTERM, as the kubelet does.
    pub fn signal(&self) -> Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill")?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "weft-controller did not exit within {timeout:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs JSON over HTTPS/1.1 to `addr`, verifying the server as `server_name` with `tls`.
pub async fn https_post(
    addr: SocketAddr,
    tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    server_name: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, bytes::Bytes)> {
    use http_body_util::{BodyExt, Full};
    use tokio_rustls::rustls::pki_types::ServerName;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from(server_name.to_string())?, tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = http::Request::post(format!("https://{server_name}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))?;
    let rsp = sender.send_request(req).await?;
    let status = rsp.status().as_u16();
    Ok((status, rsp.into_body().collect().await?.to_bytes()))
}

/// A plain-HTTP GET (the admin server).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header("host", addr.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let rsp = sender.send_request(req).await?;
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
