//! The validating admission webhook's decision for Weft's policy resources and for Gateway API
//! HTTPRoutes that name a Weft Server as a parent.
//!
//! Pure: it takes the review's bytes and returns the response. The review is read into typed,
//! bounded structures: the object stays raw JSON text until its spec is decoded into the kind's
//! own types, and what validation does not read (`oldObject`, `userInfo`, the object's metadata,
//! unknown fields) is skipped while parsing, never built into a value tree. A request's memory is
//! then a small multiple of the fields the kind really has, not of the body.

use kube::core::{
    admission::{AdmissionResponse, Operation},
    GroupVersionKind, TypeMeta,
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::value::RawValue;

use crate::{
    http_route, AuthorizationPolicySpec, FieldError, MeshTlsAuthenticationSpec,
    NetworkAuthenticationSpec, ServerAuthorizationSpec, ServerSpec, GATEWAY_GROUP, GROUP,
};

/// An `admission.k8s.io/v1` AdmissionReview as the validating webhook reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    pub api_version: String,
    pub kind: String,
    #[serde(default, borrow)]
    pub request: Option<RequestIn<'a>>,
}

/// The fields of an admission request validation reads; the object as raw JSON text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
}

/// Decides an admission request: denies invalid policy objects with a message naming the field;
/// allows other kinds, other groups, HTTPRoutes without a Weft Server parent, and operations other
/// than CREATE/UPDATE.
pub fn review(request: &RequestIn<'_>) -> AdmissionResponse {
    // The struct is non-exhaustive: start from kube's constructor and set every field we rely on.
    let mut response = AdmissionResponse::invalid("");
    response.types = TypeMeta {
        api_version: "admission.k8s.io/v1".to_string(),
        kind: "AdmissionReview".to_string(),
    };
    response.uid = request.uid.clone();
    response.allowed = true;
    response.result = Default::default();
    if !matches!(request.operation, Operation::Create | Operation::Update)
        || (request.kind.group != GROUP && request.kind.group != GATEWAY_GROUP)
    {
        return response;
    }
    let Some(object) = request.object else {
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
            validate_http_route(namespace, object.get())
        } else {
            Ok(())
        }
    } else {
        validate_object(&kind.kind, namespace, object.get())
    };
    match result {
        Ok(()) => response,
        Err(error) => response.deny(error.to_string()),
    }
}

/// Validates a `policy.weft.dev` object of `kind` in `namespace`, given as JSON text; only its
/// `spec` is read. Unknown kinds pass.
pub fn validate_object(kind: &str, namespace: &str, object: &str) -> Result<(), FieldError> {
    match kind {
        "Server" => parse_spec::<ServerSpec>(object)?.validate(),
        "ServerAuthorization" => parse_spec::<ServerAuthorizationSpec>(object)?.validate(),
        "AuthorizationPolicy" => parse_spec::<AuthorizationPolicySpec>(object)?.validate(namespace),
        "MeshTLSAuthentication" => parse_spec::<MeshTlsAuthenticationSpec>(object)?
            .clients(namespace)
            .map(drop),
        "NetworkAuthentication" => parse_spec::<NetworkAuthenticationSpec>(object)?.validate(),
        _ => Ok(()),
    }
}

/// Validates an HTTPRoute in `namespace`, given as JSON text, if a Weft Server is among its
/// parents; a route of another implementation passes untouched (read no further than its
/// parents' group and kind).
pub fn validate_http_route(namespace: &str, object: &str) -> Result<(), FieldError> {
    #[derive(Deserialize)]
    struct Parent {
        group: Option<String>,
        kind: Option<String>,
    }
    #[derive(Deserialize)]
    struct Parents {
        #[serde(default, rename = "parentRefs")]
        parent_refs: Vec<Parent>,
    }
    let names_a_server = parse_spec::<Parents>(object)
        .map(|spec| {
            spec.parent_refs
                .iter()
                .any(|p| p.group.as_deref() == Some(GROUP) && p.kind.as_deref() == Some("Server"))
        })
        .unwrap_or(false);
    if !names_a_server {
        return Ok(());
    }
    let spec = parse_spec::<gateway_api::apis::standard::httproutes::HTTPRouteSpec>(object)?;
    http_route::server_route(&spec, namespace).map(drop)
}

/// Decodes the object's `spec`, reporting a decoding error at the path where it happened.
fn parse_spec<T: DeserializeOwned>(object: &str) -> Result<T, FieldError> {
    #[derive(Deserialize)]
    struct Object<T> {
        spec: Option<T>,
    }
    let mut json = serde_json::Deserializer::from_str(object);
    let parsed: Object<T> = serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "object".to_string()
        } else {
            path
        };
        // The position in the review's text means nothing to the user: the path names the field.
        let error = error.into_inner();
        let message = error.to_string();
        let location = format!(" at line {} column {}", error.line(), error.column());
        let message = message.strip_suffix(&location).unwrap_or(&message);
        FieldError::new(field, message)
    })?;
    parsed
        .spec
        .ok_or_else(|| FieldError::new("spec", "is required"))
}

trait OperationName {
    fn operation_name(&self) -> &'static str;
}

impl OperationName for RequestIn<'_> {
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
mod tests;
