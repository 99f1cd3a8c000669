//! Shutdown with a real API server: the controller is ready, then SIGTERM turns `/ready` false at
//! once while a request in flight is still answered. (Draining without a cluster is covered by
//! `policy-controller/tests/shutdown.rs`.)

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_e2e::{controller::Controller, resources};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "shutdown::ready_turns_false_at_sigterm_while_a_request_in_flight_is_answered",
    ready_turns_false_at_sigterm_while_a_request_in_flight_is_answered,
)];

fn ready_turns_false_at_sigterm_while_a_request_in_flight_is_answered(h: &Harness) -> Result<()> {
    let mut controller = Controller::start(&h.controller_bin, &h.cluster.kubeconfig, &[])?;
    block_on(async {
        controller.wait_ready(Duration::from_secs(60)).await?;

        // A POST /inject whose body is half sent: in flight until the test sends the rest.
        let tcp = tokio::net::TcpStream::connect(controller.server_addr).await?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost")?;
        let mut tls = tokio_rustls::TlsConnector::from(controller.pki.client_config()?)
            .connect(name, tcp)
            .await?;
        let mut body = resources::pod_review("kube-system");
        let rest = body.split_off(body.len() / 2);
        let head = format!(
            "POST /inject HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len() + rest.len()
        );
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(&body).await?;
        tls.flush().await?;

        let signalled = Instant::now();
        controller.signal()?;
        let not_ready = loop {
            let (status, _) = controller.admin_get("/ready").await?;
            if status != 200 {
                break signalled.elapsed();
            }
            ensure!(
                signalled.elapsed() < Duration::from_secs(2),
                "/ready still 200 two seconds after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // kubert answers "not ready" with 500.
        let (status, body) = controller.admin_get("/ready").await?;
        ensure!(
            status == 500 && body == "not ready\n",
            "/ready while draining: {status} {body:?}, expected 500 \"not ready\""
        );

        tls.write_all(&rest).await?;
        tls.flush().await?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .context("reading the answer to the request in flight")?;
        let response = String::from_utf8_lossy(&response);
        ensure!(
            response.starts_with("HTTP/1.1 200 OK\r\n"),
            "the request in flight at SIGTERM: {response}"
        );
        println!(
            "/ready not 200 {not_ready:?} after SIGTERM; the request in flight answered 200 \
             {:?} after it",
            signalled.elapsed()
        );
        Ok(())
    })?;
    let status = controller.wait_exit(Duration::from_secs(15))?;
    ensure!(status.success(), "a drained shutdown exits 0: {status}");
    Ok(())
}
