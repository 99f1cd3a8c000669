//! The real `weft-controller` binary, run without a cluster: the kubeconfig names an address
//! nothing listens on. The controller never becomes ready then, but its servers listen before any
//! watch starts, and a pod in a system namespace is answered without the namespace index.

#![allow(dead_code)]

use super::TestPki;
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub struct Controller {
    pub child: Child,
    pub server_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub pki: TestPki,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The binary under test: `WEFT_CONTROLLER_BIN` (e.g. a release build, for the figures the
/// hostile-client test prints), else the one cargo built for these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("WEFT_CONTROLLER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weft-controller")))
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A kubeconfig for an API server that refuses every connection (nothing listens on port 1).
pub fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: none, user: {token: none}}]\n\
         contexts: [{name: none, context: {cluster: none, user: none}}]\n\
         current-context: none\n",
    )
    .unwrap();
    path
}

impl Controller {
    /// Starts the controller on free ports; when a port was taken meanwhile (by another test
    /// process), again on others.
    pub async fn start() -> Self {
        // No API server to ask its version: the layout is given.
        Self::start_with(&["--native-sidecar=true"]).await
    }

    /// As [`Self::start`], with `extra` flags.
    pub async fn start_with(extra: &[&str]) -> Self {
        for _ in 0..3 {
            if let Some(controller) = Self::try_start(extra).await {
                return controller;
            }
        }
        panic!("weft-controller could not listen on free ports three times");
    }

    /// `None` when a port was taken.
    pub async fn try_start(extra: &[&str]) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate("shutdown");
        pki.write(dir.path());
        let (server_addr, admin_addr, grpc_addr) = (free_addr(), free_addr(), free_addr());
        let log = dir.path().join("controller.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .arg(format!(
                "--kubeconfig={}",
                unreachable_kubeconfig(dir.path()).display()
            ))
            .arg(format!("--admin-addr={admin_addr}"))
            .arg(format!("--server-addr={server_addr}"))
            .arg(format!(
                "--server-tls-key={}",
                dir.path().join("tls.key").display()
            ))
            .arg(format!(
                "--server-tls-certs={}",
                dir.path().join("tls.crt").display()
            ))
            .args(super::identity_args(dir.path(), grpc_addr))
            .arg("--log-level=info,weft=debug,kube=off,kubert=debug")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut controller = Self {
            child,
            server_addr,
            admin_addr,
            grpc_addr,
            pki,
            log,
            _dir: dir,
        };
        // Logged once the webhook server listens (the admin server listens before it).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&controller.log)
            .unwrap_or_default()
            .contains("Serving admission webhooks on HTTPS")
        {
            if controller.exited().is_some() {
                let log = controller.log_tail();
                assert!(
                    log.contains("failed to listen") || log.contains("Address already in use"),
                    "weft-controller exited at start\n{log}"
                );
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "weft-controller did not listen within 30 s\n{}",
                controller.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(controller)
    }

    /// The controller's resident memory now (`VmRSS`, KiB).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// How many file descriptors the controller holds open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn signal(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Waits until the webhook server accepts no connection any more.
    pub async fn wait_refusing(&self) -> Duration {
        let start = Instant::now();
        for addr in [self.server_addr] {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{addr} still accepts connections 5 s after SIGTERM\n{}",
                    self.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        start.elapsed()
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < timeout,
                "weft-controller did not exit within {timeout:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(30);
        format!("--- controller log ---\n{}", lines[start..].join("\n"))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An AdmissionReview for a pod in `kube-system`: answered 200 (skipped) without any API call.
pub fn review(uid: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{uid}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "kube-system",
            "operation": "CREATE",
            "userInfo": {"username": "test"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": format!("pod-{uid}"), "namespace": "kube-system"},
                "spec": {"containers": [{"name": "app", "image": "app"}]}
            }
        }
    }))
    .unwrap()
}

/// The status of a complete HTTP/1.1 response (headers and a `content-length` body).
pub fn complete_response(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then_some(status)
}
