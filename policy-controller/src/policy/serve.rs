//! The HTTP server of the policy API: accept loop, connections, request handling.

use crate::shutdown::{self, Stopping};
use http::{header, Request, Response, StatusCode};
use hyper::{body::Incoming, service::service_fn};
use serde::Serialize;
use std::{convert::Infallible, future::Future};
use tokio::net::TcpListener;
use weft_policy_index::{LookupError, SharedIndex};

use super::{
    metrics::ApiMetrics,
    route,
    watch_body::{full, json_line, watch_stream, Body},
};

/// Serves the policy API on `listener` until `shutdown` completes; then, as every server of the
/// controller does (see [`crate::shutdown`]), stops accepting, ends watch streams, lets
/// connections finish and holds the guard `shutdown` yields until they have.
pub async fn serve_api<G>(
    listener: TcpListener,
    index: SharedIndex,
    metrics: ApiMetrics,
    shutdown: impl Future<Output = G>,
) {
    shutdown::serve("policy API", listener, shutdown, move |stream, stopping| {
        let handler = Handler {
            index: index.clone(),
            metrics: metrics.clone(),
            stop: stopping.clone(),
        };
        let service = service_fn(move |request| {
            let response = handler.handle(&request);
            async move { Ok::<_, Infallible>(response) }
        });
        async move {
            let connect =
                |io| hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            if let Err(error) = stopping.serve(stream, connect).await {
                tracing::debug!(%error, "policy API connection ended with an error");
            }
        }
    })
    .await;
}

#[derive(Clone)]
struct Handler {
    index: SharedIndex,
    metrics: ApiMetrics,
    stop: Stopping,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl Handler {
    fn handle(&self, request: &Request<Incoming>) -> Response<Body> {
        let uri = request.uri();
        let parsed = route::parse(request.method(), uri.path(), uri.query());
        let watch = parsed.as_ref().is_ok_and(|r| r.watch);
        let response = match parsed {
            Err(refusal) => error(refusal.status, &refusal.message),
            Ok(req) => {
                let lookup = self
                    .index
                    .read()
                    .pod_port_policy(&req.namespace, &req.pod, req.port);
                match lookup {
                    Err(e @ LookupError::PodNotFound { .. }) => {
                        error(StatusCode::NOT_FOUND, &e.to_string())
                    }
                    Err(e @ LookupError::InvalidPort) => {
                        error(StatusCode::BAD_REQUEST, &e.to_string())
                    }
                    Ok(policy) if req.watch => {
                        let body = watch_stream(
                            policy,
                            self.stop.clone(),
                            req.namespace,
                            req.pod,
                            self.metrics.watch_opened(),
                        );
                        with_type(Response::new(body), "application/x-ndjson")
                    }
                    Ok(policy) => {
                        let body = full(json_line(&*policy.borrow()));
                        with_type(Response::new(body), "application/json")
                    }
                }
            }
        };
        self.metrics.request(response.status(), watch);
        response
    }
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(full(json_line(&ErrorBody { error: message })));
    *response.status_mut() = status;
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    }
    with_type(response, "application/json")
}

fn with_type(mut response: Response<Body>, content_type: &'static str) -> Response<Body> {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
