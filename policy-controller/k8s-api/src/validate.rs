//! The validating admission webhook's decision for Server and ServerAuthorization objects.
//!
//! Pure: it takes the decoded admission request and returns the response.

use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{FieldError, ServerAuthorizationSpec, ServerSpec, GROUP};

/// Decides an admission request: denies invalid Servers and ServerAuthorizations with a message
/// naming the field; allows other kinds, other groups and operations other than CREATE/UPDATE.
pub fn review(request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create | Operation::Update)
        || request.kind.group != GROUP
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
    match validate_object(&request.kind.kind, &object.data) {
        Ok(()) => response,
        Err(error) => response.deny(error.to_string()),
    }
}

/// Validates the body (everything but metadata) of an object of `kind`. Unknown kinds pass.
pub fn validate_object(kind: &str, data: &Value) -> Result<(), FieldError> {
    match kind {
        "Server" => parse_spec::<ServerSpec>(data)?.validate(),
        "ServerAuthorization" => parse_spec::<ServerAuthorizationSpec>(data)?.validate(),
        _ => Ok(()),
    }
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
