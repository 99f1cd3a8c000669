//! Graceful shutdown of the real `weft-controller` binary: requests that are in flight when
//! SIGTERM arrives are answered, new connections are refused at once, the process exits once
//! they are done, and a second signal exits at once.
//!
//! No cluster is needed: the kubeconfig names an address nothing listens on. The controller never
//! becomes ready then, but its servers listen before any watch starts, and a pod in a system
//! namespace is answered without the namespace index.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};
use support::controller::{complete_response, review, Controller};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{client::TlsStream, rustls::pki_types::ServerName};

/// Requests started before the signal and completed after it.
const IN_FLIGHT: usize = 4;
/// How long the requests stay in flight after the server stopped accepting: long enough for a
/// process that does not wait for them to have exited.
const HELD_AFTER_SIGNAL: Duration = Duration::from_millis(800);
/// The controller's drain grace period (10 s), plus slack for a busy machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);

/// The tests run one at a time: each runs a controller on ports picked free a moment before.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
