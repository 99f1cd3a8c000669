//! Parsing policy API requests: pure, no I/O.

use http::{Method, StatusCode};

/// The one route: `GET /v1/inbound/{namespace}/{pod}/{port}[?watch=true]`.
pub(crate) const ROUTE: &str = "GET /v1/inbound/{namespace}/{pod}/{port}[?watch=true]";

/// A valid policy request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyRequest {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) port: u16,
    pub(crate) watch: bool,
}

/// Why a request is refused: the status to answer and a message for the JSON error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Parses a request line into a [`PolicyRequest`].
pub(crate) fn parse(
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<PolicyRequest, Refusal> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["v1", "inbound", namespace, pod, port] = segments.as_slice() else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no such route {path:?}; expected {ROUTE}"),
        ));
    };
    if method != Method::GET {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed; expected {ROUTE}"),
        ));
    }
    if namespace.is_empty() || pod.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("namespace and pod must not be empty; expected {ROUTE}"),
        ));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("port {port:?} is not a port number (1-65535)"),
            )
        })?;
    Ok(PolicyRequest {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        port,
        watch: parse_watch(query)?,
    })
}

fn parse_watch(query: Option<&str>) -> Result<bool, Refusal> {
    let mut watch = false;
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "watch" {
            continue;
        }
        watch = match value {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("watch={other:?} is not valid; expected watch=true or watch=false"),
                ))
            }
        };
    }
    Ok(watch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ok(path: &str, query: Option<&str>) -> PolicyRequest {
        parse(&Method::GET, path, query).unwrap()
    }

    fn refused(method: Method, path: &str, query: Option<&str>) -> (StatusCode, String) {
        let r = parse(&method, path, query).unwrap_err();
        (r.status, r.message)
    }

    #[test]
    fn parses_requests() {
        assert_eq!(
            ok("/v1/inbound/emojivoto/web-5d8f/8080", None),
            PolicyRequest {
                namespace: "emojivoto".into(),
                pod: "web-5d8f".into(),
                port: 8080,
                watch: false
            }
        );
        assert!(ok("/v1/inbound/ns/p/80", Some("watch=true")).watch);
        assert!(ok("/v1/inbound/ns/p/80", Some("x=1&watch=1")).watch);
        assert!(!ok("/v1/inbound/ns/p/80", Some("watch=false")).watch);
    }

    #[test]
    fn refuses_with_the_right_status() {
        for port in ["0", "65536", "http", "-1", ""] {
            let (status, message) = refused(Method::GET, &format!("/v1/inbound/ns/p/{port}"), None);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{port}");
            assert_eq!(
                message,
                format!("port {port:?} is not a port number (1-65535)")
            );
        }
        assert_eq!(
            refused(Method::POST, "/v1/inbound/ns/p/80", None).0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            refused(Method::GET, "/v1/outbound/ns/p/80", None).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refused(Method::GET, "/v1/inbound/ns/p", None).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refused(Method::GET, "/v1/inbound/ns/p/80/x", None).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refused(Method::GET, "/v1/inbound//p/80", None).0,
            StatusCode::BAD_REQUEST
        );
        let (status, message) = refused(Method::GET, "/v1/inbound/ns/p/80", Some("watch=yes"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            message,
            "watch=\"yes\" is not valid; expected watch=true or watch=false"
        );
    }
}
