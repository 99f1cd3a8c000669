//! The HTTP server of the policy API: accept loop, connections, request handling.

use http::{header, Request, Response, StatusCode};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::{convert::Infallible, future::Future, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use weft_policy_index::{LookupError, SharedIndex};

use super::{
    metrics::ApiMetrics,
    route,
    watch_body::{full, json_line, watch_stream, Body},
};

/// How long open connections may take to finish after shutdown before they are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the policy API on `listener` until `shutdown` completes; then stops accepting, ends
/// watch streams and lets connections finish (bounded by a drain timeout).
pub async fn serve_api(
    listener: TcpListener,
    index: SharedIndex,
    metrics: ApiMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    let handler = Handler {
        index,
        metrics,
        stop: stop.clone(),
    };
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, handler.clone(), stop.clone()));
                }
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accepting a policy API connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("policy API connections did not finish in time; closing them");
        connections.shutdown().await;
    }
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let response = handler.handle(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "policy API connection ended with an error");
    }
}

/// Completes once shutdown is signalled (or the signal's sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

#[derive(Clone)]
struct Handler {
    index: SharedIndex,
    metrics: ApiMetrics,
    stop: watch::Receiver<bool>,
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
