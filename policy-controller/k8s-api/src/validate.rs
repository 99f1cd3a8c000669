//! The validating admission webhook's decision for Weft's policy resources and for Gateway API
//! HTTPRoutes that name a Weft Server as a parent.
//!
//! Pure: it takes the decoded admission request and returns the response.

use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    http_route, AuthorizationPolicySpec, FieldError, MeshTlsAuthenticationSpec,
    NetworkAuthenticationSpec, ServerAuthorizationSpec, ServerSpec, GATEWAY_GROUP, GROUP,
};

/// Decides an admission request: denies invalid policy objects with a message naming the field;
/// allows other kinds, other groups, HTTPRoutes without a Weft Server parent, and operations other
/// than CREATE/UPDATE.
pub fn review(request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create | Operation::Update)
        || (request.kind.group != GROUP && request.kind.group != GATEWAY_GROUP)
    {
        return response;
    }
    let Some(object) = &request.object else {
        return response.deny(format!(
            "{} {}: the admission request carries no object",
            request.operation_name(),
            request.kind.kind
        ));
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let kind = &request.kind;
    let result = if kind.group == GATEWAY_GROUP {
        if kind.kind == "HTTPRoute" {
            validate_http_route(namespace, &object.data)
        } else {
            Ok(())
        }
    } else {
        validate_object(&kind.kind, namespace, &object.data)
    };
    match result {
        Ok(()) => response,
        Err(error) => response.deny(error.to_string()),
    }
}

/// Validates the body (everything but metadata) of a `policy.weft.dev` object of `kind` in
/// `namespace`. Unknown kinds pass.
pub fn validate_object(kind: &str, namespace: &str, data: &Value) -> Result<(), FieldError> {
    match kind {
        "Server" => parse_spec::<ServerSpec>(data)?.validate(),
        "ServerAuthorization" => parse_spec::<ServerAuthorizationSpec>(data)?.validate(),
        "AuthorizationPolicy" => parse_spec::<AuthorizationPolicySpec>(data)?.validate(namespace),
        "MeshTLSAuthentication" => parse_spec::<MeshTlsAuthenticationSpec>(data)?
            .clients(namespace)
            .map(drop),
        "NetworkAuthentication" => parse_spec::<NetworkAuthenticationSpec>(data)?.validate(),
        _ => Ok(()),
    }
}

/// Validates an HTTPRoute in `namespace` if a Weft Server is among its parents; a route of
/// another implementation passes untouched (and unparsed beyond its parents).
pub fn validate_http_route(namespace: &str, data: &Value) -> Result<(), FieldError> {
    let names_a_server = data
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .is_some_and(|parents| {
            parents.iter().any(|p| {
                p.get("group").and_then(Value::as_str) == Some(GROUP)
                    && p.get("kind").and_then(Value::as_str) == Some("Server")
            })
        });
    if !names_a_server {
        return Ok(());
    }
    let spec = parse_spec::<gateway_api::apis::standard::httproutes::HTTPRouteSpec>(data)?;
    http_route::server_route(&spec, namespace).map(drop)
}

/// Decodes `spec`, reporting a decoding error at the path where it happened.
fn parse_spec<T: DeserializeOwned>(data: &Value) -> Result<T, FieldError> {
    let spec = data
        .get("spec")
        .ok_or_else(|| FieldError::new("spec", "is required"))?;
    serde_path_to_error::deserialize(spec).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        FieldError::new(field, error.into_inner().to_string())
    })
}

trait OperationName {
    fn operation_name(&self) -> &'static str;
}

impl OperationName for AdmissionRequest<DynamicObject> {
    fn operation_name(&self) -> &'static str {
        match self.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
