//! Graceful shutdown of the real `weft-controller` binary: requests that are in flight when
//! SIGTERM arrives are answered, new connections are refused at once, the process exits once
//! they are done, and a second signal exits at once.
//!
//! No cluster is needed: the kubeconfig names an address nothing listens on. The controller never
//! becomes ready then, but its servers listen before any watch starts, and a pod in a system
//! namespace is answered without the namespace index.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};
use support::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{client::TlsStream, rustls::pki_types::ServerName};

/// Requests started before the signal and completed after it.
const IN_FLIGHT: usize = 4;
/// How long the requests stay in flight after the server stopped accepting: long enough for a
/// process that does not wait for them to have exited.
const HELD_AFTER_SIGNAL: Duration = Duration::from_millis(800);
/// The controller's drain grace period (10 s), plus slack for a busy machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);

struct Controller {
    child: Child,
    server_addr: SocketAddr,
    pki: TestPki,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A kubeconfig for an API server that refuses every connection (nothing listens on port 1).
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
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

/// The tests run one at a time: each runs a controller on ports picked free a moment before.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Controller {
    /// Starts the controller on free ports; when a port was taken meanwhile (by another test
    /// process), again on others.
    async fn start() -> Self {
        for _ in 0..3 {
            if let Some(controller) = Self::try_start().await {
                return controller;
            }
        }
        panic!("weft-controller could not listen on free ports three times");
    }

    /// `None` when a port was taken.
    async fn try_start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate("shutdown");
        pki.write(dir.path());
        let (server_addr, admin_addr) = (free_addr(), free_addr());
        let log = dir.path().join("controller.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_weft-controller"))
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
            .args(support::identity_args(dir.path(), free_addr()))
            .arg("--log-level=info,weft=debug,kube=off,kubert=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut controller = Self {
            child,
            server_addr,
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

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    fn signal(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Waits until the webhook server accepts no connection any more.
    async fn wait_refusing(&self) -> Duration {
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

    async fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
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

    fn log_tail(&self) -> String {
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
fn review(uid: usize) -> Vec<u8> {
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

/// A `POST /inject` whose headers and first half of the body have been sent.
struct SlowRequest {
    tls: TlsStream<tokio::net::TcpStream>,
    rest: Vec<u8>,
}

impl SlowRequest {
    async fn start(controller: &Controller, uid: usize) -> Self {
        let tcp = tokio::net::TcpStream::connect(controller.server_addr)
            .await
            .unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(controller.pki.client_config())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let mut body = review(uid);
        let rest = body.split_off(body.len() / 2);
        let head = format!(
            "POST /inject HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len() + rest.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&body).await.unwrap();
        tls.flush().await.unwrap();
        Self { tls, rest }
    }

    /// Sends the rest of the body; the response's status, once the whole response has arrived.
    async fn finish(mut self) -> Result<u16, String> {
        let sent = async {
            self.tls.write_all(&self.rest).await?;
            self.tls.flush().await
        };
        sent.await.map_err(|e| format!("sending the rest: {e}"))?;
        let mut response = Vec::new();
        let mut buf = [0; 4096];
        loop {
            let n = self
                .tls
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the response: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "connection closed after {} bytes of response",
                    response.len()
                ));
            }
            response.extend_from_slice(&buf[..n]);
            if let Some(status) = complete_response(&response) {
                return Ok(status);
            }
        }
    }
}

/// The status of a complete HTTP/1.1 response (headers and a `content-length` body).
fn complete_response(bytes: &[u8]) -> Option<u16> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_at_sigterm_are_answered_then_the_process_exits() {
    let _serial = SERIAL.lock().await;
    let mut controller = Controller::start().await;

    // The server answers at all.
    let warmup = SlowRequest::start(&controller, 0).await;
    assert_eq!(warmup.finish().await, Ok(200), "{}", controller.log_tail());

    let mut requests = Vec::new();
    for uid in 1..=IN_FLIGHT {
        requests.push(SlowRequest::start(&controller, uid).await);
    }

    let signalled = Instant::now();
    controller.signal();
    let refusing = controller.wait_refusing().await;
    tokio::time::sleep(HELD_AFTER_SIGNAL).await;
    let gone_before_answers = controller.exited().is_some();

    let results = futures::future::join_all(requests.into_iter().map(SlowRequest::finish)).await;
    let answered = Instant::now();
    let (status, exit_after_answers) = controller.wait_exit(EXIT_DEADLINE).await;
    println!(
        "new connections refused {refusing:?} after SIGTERM; {} of {IN_FLIGHT} in-flight requests \
         answered 200 ({:?} after SIGTERM); {}exited {exit_after_answers:?} after the last \
         answer ({:?} after SIGTERM), {status}",
        results.iter().filter(|r| **r == Ok(200)).count(),
        answered - signalled,
        if gone_before_answers {
            "had already exited before the requests completed; "
        } else {
            ""
        },
        signalled.elapsed(),
    );
    assert!(
        results.iter().all(|r| *r == Ok(200)),
        "every request in flight at SIGTERM must be answered 200: {results:?}\n{}",
        controller.log_tail()
    );
    assert!(status.success(), "a drained shutdown exits 0: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let _serial = SERIAL.lock().await;
    let mut controller = Controller::start().await;
    let request = SlowRequest::start(&controller, 1).await;

    controller.signal();
    controller.wait_refusing().await;
    tokio::time::sleep(HELD_AFTER_SIGNAL).await;
    let exited = controller.exited();
    assert!(
        exited.is_none(),
        "the controller must wait for the request in flight, but exited: {exited:?}\n{}",
        controller.log_tail()
    );

    controller.signal();
    let (status, exit_after) = controller.wait_exit(Duration::from_secs(2)).await;
    println!("exited {exit_after:?} after the second signal, {status}");
    assert!(
        !status.success(),
        "an aborted shutdown is an error exit: {status}"
    );
    assert!(
        request.finish().await.is_err(),
        "the request in flight is cut by the abort"
    );
}
