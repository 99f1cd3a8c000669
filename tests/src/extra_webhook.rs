//! A second, unrelated mutating webhook that appends a container to every pod it sees, so the API
//! server reinvokes Weft's webhook (`reinvocationPolicy: IfNeeded`) on an already injected pod.

use crate::pki::Pki;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
    DynamicObject,
};
use std::net::SocketAddr;

pub const EXTRA_CONTAINER: &str = "extra-sidecar";

#[derive(Debug)]
pub struct ExtraWebhook {
    pub addr: SocketAddr,
    pub pki: Pki,
    task: tokio::task::JoinHandle<()>,
}

impl ExtraWebhook {
    pub async fn start() -> Result<Self> {
        let pki = Pki::generate("extra-webhook")?;
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config()?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from(
                                add_container(&body),
                            ))))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, pki, task })
    }
}

impl Drop for ExtraWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn add_container(body: &[u8]) -> Vec<u8> {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => return format!("not a review: {error}").into_bytes(),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => return format!("not a request: {error}").into_bytes(),
    };
    let mut response = AdmissionResponse::from(&request);
    let has_extra = request
        .object
        .as_ref()
        .and_then(|pod| pod.data["spec"]["containers"].as_array())
        .is_some_and(|containers| containers.iter().any(|c| c["name"] == EXTRA_CONTAINER));
    if !has_extra {
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([{
            "op": "add",
            "path": "/spec/containers/-",
            "value": {"name": EXTRA_CONTAINER, "image": "registry.example/extra:1"},
        }]))
        .expect("a literal patch is valid");
        response = match response.with_patch(patch) {
            Ok(response) => response,
            Err(error) => AdmissionResponse::from(&request).deny(error.to_string()),
        };
    }
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}
