//! The AdmissionReview v1 wire format, read and written directly instead of through kube's generic
//! `AdmissionReview<DynamicObject>`, for two reasons the profile showed:
//!
//! - Reading: kube's types flatten `TypeMeta` into the review and the object, which makes serde buffer the whole
//!   body and parse it twice, and `DynamicObject` keeps the entire pod as a tree of values. Here the request is
//!   parsed once, and its object keeps only what injection reads (see [`POD`]); the rest of the pod is skipped.
//! - Writing: kube serializes `patch` (Go's `[]byte`) as an array of numbers, about 4× the size of the base64
//!   string the API defines. Here `patch` is written as base64, from the fields of kube's `AdmissionResponse`.

use crate::pruned::{Pruned, Shape};
use base64::Engine as _;
use k8s_openapi::{api::authentication::v1::UserInfo, apimachinery::pkg::runtime::RawExtension};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject, GroupVersionKind, GroupVersionResource, ObjectMeta, Status, TypeMeta,
};
use serde::{de::DeserializeSeed, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::HashMap;

/// The parts of a pod's metadata the webhook reads (the decision and the log).
const METADATA: Shape = Shape::Fields(&[
    ("name", Shape::All),
    ("generateName", Shape::All),
    ("namespace", Shape::All),
    ("uid", Shape::All),
    ("annotations", Shape::All),
    ("labels", Shape::All),
]);

/// The parts of a container injection reads: its name, its ports, and whether it is a native sidecar.
static CONTAINER: Shape = Shape::Fields(&[
    ("name", Shape::All),
    ("ports", Shape::All),
    ("restartPolicy", Shape::All),
]);

static VOLUME: Shape = Shape::Fields(&[("name", Shape::All)]);

/// Everything injection reads from a pod (the decision, the port checks and the patch's positions).
/// Anything else (env, volume sources, probes, managed fields, status, ...) is skipped while parsing.
pub(super) static POD: Shape = Shape::Fields(&[
    ("apiVersion", Shape::All),
    ("kind", Shape::All),
    ("metadata", METADATA),
    (
        "spec",
        Shape::Fields(&[
            ("hostNetwork", Shape::All),
            ("containers", Shape::Each(&CONTAINER)),
            ("initContainers", Shape::Each(&CONTAINER)),
            ("volumes", Shape::Each(&VOLUME)),
        ]),
    ),
]);

/// `admission.k8s.io/v1` AdmissionReview, as a webhook receives it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewIn {
    api_version: String,
    kind: String,
    request: Option<RequestIn>,
}

/// The fields of kube's `AdmissionRequest`, with the object pruned and `oldObject` skipped (only CREATE is
/// mutated, so it is never read).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    request_sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    user_info: UserInfo,
    object: Option<PrunedObject>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    options: Option<RawExtension>,
}

impl ReviewIn {
    /// The request, with the review's type copied in as kube does (`None`: the review has no request).
    pub(super) fn into_request(self) -> Option<AdmissionRequest<DynamicObject>> {
        let r = self.request?;
        Some(AdmissionRequest {
            types: TypeMeta {
                api_version: self.api_version,
                kind: self.kind,
            },
            uid: r.uid,
            kind: r.kind,
            resource: r.resource,
            sub_resource: r.sub_resource,
            request_kind: r.request_kind,
            request_resource: r.request_resource,
            request_sub_resource: r.request_sub_resource,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            user_info: r.user_info,
            object: r.object.map(|o| o.0),
            old_object: None,
            dry_run: r.dry_run,
            options: r.options,
        })
    }
}

/// A request object holding only the fields in [`POD`]: metadata parsed, `spec` kept as JSON in `data`.
struct PrunedObject(DynamicObject);

impl<'de> Deserialize<'de> for PrunedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Value::Object(mut fields) = Pruned(&POD).deserialize(deserializer)? else {
            return Err(D::Error::custom("request.object: expected a JSON object"));
        };
        let types = match (fields.remove("apiVersion"), fields.remove("kind")) {
            (Some(Value::String(api_version)), Some(Value::String(kind))) => {
                Some(TypeMeta { api_version, kind })
            }
            _ => None,
        };
        let metadata = match fields.remove("metadata") {
            None => ObjectMeta::default(),
            Some(metadata) => ObjectMeta::deserialize(metadata)
                .map_err(|e| D::Error::custom(format_args!("request.object.metadata: {e}")))?,
        };
        Ok(Self(DynamicObject {
            types,
            metadata,
            data: Value::Object(fields),
        }))
    }
}

/// `admission.k8s.io/v1` AdmissionReview with a response, as a webhook answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Base64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    audit_annotations: &'a HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

/// Bytes written as a standard base64 string (how Kubernetes encodes `[]byte` in JSON).
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

/// Serializes the review answering with `response`. Its `types` come from the request; a missing type
/// (only for responses not built from a request) falls back to `admission.k8s.io/v1`.
pub(super) fn review_bytes(response: &AdmissionResponse) -> Vec<u8> {
    let types = &response.types;
    let review = ReviewOut {
        api_version: if types.api_version.is_empty() {
            "admission.k8s.io/v1"
        } else {
            &types.api_version
        },
        kind: if types.kind.is_empty() {
            "AdmissionReview"
        } else {
            &types.kind
        },
        response: ResponseOut {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            patch: response.patch.as_deref().map(Base64),
            patch_type: response.patch.as_ref().map(|_| "JSONPatch"),
            audit_annotations: &response.audit_annotations,
            warnings: response.warnings.as_deref(),
        },
    };
    let mut out = Vec::with_capacity(512 + response.patch.as_ref().map_or(0, |p| p.len() * 4 / 3));
    serde_json::to_writer(&mut out, &review)
        .expect("an AdmissionReview response of strings and bytes always serializes");
    out
}
