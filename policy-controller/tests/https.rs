//! The admission service over real TLS sockets: the controller's HTTPS server with test
//! certificates and a hyper client posting AdmissionReviews, as kube-apiserver does.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::{net::SocketAddr, path::Path, time::Duration};
use support::TestPki;
use tokio_rustls::rustls::pki_types::ServerName;
use weft_policy_controller::{
    watch::{NamespaceIndex, NamespaceMetrics},
    webhook::metrics::AdmissionMetrics,
    AdmissionService, MAX_BODY_BYTES,
};

struct TestServer {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    /// Dropped with the test: the server shuts down.
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start_server(pki: &TestPki, namespaces: &[(&str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());

    let index = NamespaceIndex::shared(NamespaceMetrics::default());
    {
        use kubert::index::IndexClusterResource;
        let mut index = index.write();
        for (name, inject) in namespaces {
            let mut ns = k8s_openapi::api::core::v1::Namespace::default();
            ns.metadata.name = Some(name.to_string());
            ns.metadata.annotations = Some(
                [("weft.dev/inject".to_string(), inject.to_string())]
                    .into_iter()
                    .collect(),
            );
            index.apply(ns);
        }
    }
    let injector = weft_injector::Injector::new(weft_injector::config::ProxyConfig::default());
    let service = AdmissionService::new(injector, index, None, AdmissionMetrics::default());

    // The server weft-controller runs: credentials cached, re-read when the files change.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(weft_policy_controller::server::tls::serve(
        listener,
        dir.path().join("tls.key"),
        dir.path().join("tls.crt"),
        service.into_service(),
        async move {
            let _ = stopped.await;
        },
    ));
    TestServer {
        addr,
        dir,
        _shutdown: shutdown,
    }
}

/// One request on a new TLS connection that trusts only `pki`'s CA.
async fn post(
    addr: SocketAddr,
    pki: &TestPki,
    path: &str,
    body: Vec<u8>,
) -> std::io::Result<(http::StatusCode, Bytes)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(pki.client_config());
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = http::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let rsp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let status = rsp.status();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body))
}

fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/admission-corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the admission corpus is expected at {}: {e}",
            path.display()
        )
    })
}

/// The patch of a response: a base64 string, as the API defines it, or an array of bytes, which
/// the API server's decoder accepts too.
fn decode_patch(patch: &serde_json::Value) -> serde_json::Value {
    let bytes = match patch {
        serde_json::Value::String(b64) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        }
        serde_json::Value::Array(bytes) => bytes
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect(),
        other => panic!("a patch is a base64 string or a byte array, not {other}"),
    };
    serde_json::from_slice(&bytes).unwrap()
}

fn response(body: &[u8]) -> serde_json::Value {
    let review: serde_json::Value = serde_json::from_slice(body).unwrap();
    review["response"].clone()
}

#[tokio::test]
async fn answers_admission_reviews_over_tls() {
    let pki = TestPki::generate("first");
    let server = start_server(&pki, &[("shop", "enabled")]).await;

    // A pod that opts in: 200 with a JSON patch for the request's uid.
    let (status, body) = post(
        server.addr,
        &pki,
        "/inject",
        corpus("03-web-deployment.json"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let rsp = response(&body);
    assert_eq!(rsp["uid"], "6b0d549b-6f03-675a-1600-a35a099950d8");
    assert_eq!(rsp["allowed"], true);
    assert_eq!(rsp["patchType"], "JSONPatch");
    let patch = decode_patch(&rsp["patch"]);
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/initContainers/1" && op["value"]["name"] == "weft-proxy"),
        "the patch adds weft-proxy as a native sidecar after weft-init (the default): {patch}"
    );

    // hostNetwork: 200, allowed, no patch.
    let (status, body) = post(server.addr, &pki, "/inject", corpus("07-host-network.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let rsp = response(&body);
    assert_eq!(rsp["allowed"], true);
    assert!(
        rsp.get("patch").is_none(),
        "no patch for hostNetwork: {rsp}"
    );

    // Not an AdmissionReview: 400 with a plain message.
    let (status, body) = post(server.addr, &pki, "/inject", b"{\"kind\":\"Pod\"}".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(!body.is_empty());
    let (status, _) = post(server.addr, &pki, "/inject", b"not json".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);

    // Over 10 MiB: 413.
    let (status, _) = post(server.addr, &pki, "/inject", vec![b' '; MAX_BODY_BYTES + 1])
        .await
        .unwrap();
    assert_eq!(status, 413);

    // Unknown path: 404.
    let (status, _) = post(server.addr, &pki, "/mutate", corpus("01-bare-pod.json"))
        .await
        .unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rotated_certificate_is_used_without_restart() {
    let first = TestPki::generate("first");
    let server = start_server(&first, &[]).await;
    let (status, _) = post(server.addr, &first, "/inject", corpus("01-bare-pod.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);

    // Rotate to a certificate from another CA, as cert-manager or `helm upgrade` would.
    let second = TestPki::generate("second");
    second.write(server.dir.path());

    // From the next reload (every second) new connections present the new certificate: a client
    // that trusts the new CA succeeds, one that trusts only the old CA fails the handshake.
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match post(server.addr, &second, "/inject", corpus("01-bare-pod.json")).await {
                Ok((status, _)) => return status,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the rotated certificate is served within a few seconds");
    assert_eq!(status, 200);
    let old = post(server.addr, &first, "/inject", corpus("01-bare-pod.json")).await;
    assert!(old.is_err(), "the old CA must no longer verify the server");
}
