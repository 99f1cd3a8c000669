//! The AdmissionReview v1 wire format, read and written directly instead of through kube's generic
//! `AdmissionReview<DynamicObject>`, for two reasons the profile showed:
//!
//! - Reading: kube's types flatten `TypeMeta` into the review and the object, which makes serde buffer the whole
//!   body and parse it twice, and `DynamicObject` keeps the entire pod as a tree of values. Here the request is
//!   parsed once, and its object keeps only what injection reads (see [`POD`]); the rest of the pod is skipped.
//! - Writing: kube serializes `patch` (Go's `[]byte`) as an array of numbers, about 4× the size of the base64
//!   string the API defines. Here `patch` is written as base64, from the fields of kube's `AdmissionResponse`.

use crate::pruned::{Budget, Pruned, Shape};
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject, GroupVersionKind, GroupVersionResource, ObjectMeta, TypeMeta,
};
use serde::{
    de::{DeserializeSeed, IgnoredAny},
    Deserialize, Deserializer, Serialize,
};
use serde_json::Value;

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

/// The fields of kube's `AdmissionRequest`, with the object pruned, and `oldObject`, `userInfo` and `options`
/// skipped: injection reads none of them (only CREATE is mutated), so a large one costs the scan over its bytes.
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
    /// Required, as the API server always sends it, but not kept: injection does not read it.
    #[serde(rename = "userInfo")]
    _user_info: IgnoredAny,
    object: Option<PrunedObject>,
    #[serde(default)]
    dry_run: bool,
    /// The operation's options (e.g. `CreateOptions`): not read, so skipped unparsed.
    #[serde(default, rename = "options")]
    _options: Option<IgnoredAny>,
}

impl ReviewIn {
    /// The review's `apiVersion` and `kind`.
    pub(super) fn types(&self) -> (&str, &str) {
        (&self.api_version, &self.kind)
    }

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
            user_info: UserInfo::default(),
            object: r.object.map(|o| o.0),
            old_object: None,
            dry_run: r.dry_run,
            options: None,
        })
    }
}

/// How many values of a pod the webhook keeps at most (see [`Budget`]). A pod's annotations are
/// limited to 256 KiB by the API server, and its containers' names, ports and volume names are
/// counted in tens or hundreds, so real pods keep a few thousand at most; a body that spends its
/// bytes on millions of tiny values in those fields is refused instead of costing ~100 bytes of
/// memory for each.
const MAX_KEPT_VALUES: usize = 200_000;

/// A request object holding only the fields in [`POD`]: metadata parsed, `spec` kept as JSON in `data`.
struct PrunedObject(DynamicObject);

impl<'de> Deserialize<'de> for PrunedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let budget = Budget::new(MAX_KEPT_VALUES);
        let Value::Object(mut fields) = Pruned(&POD, &budget).deserialize(deserializer)? else {
            return Err(D::Error::custom("request.object: expected a JSON object"));
        };
        let types = match (fields.remove("apiVersion"), fields.remove("kind")) {
            (Some(Value::String(api_version)), Some(Value::String(kind))) => {
                Some(TypeMeta { api_version, kind })
            }
            _ => None,
        };
        let metadata = match fields.remove("metadata") {
            // The API server always sends an object's metadata. Without it no patch could add the
            // annotations injection writes (`/metadata/annotations` needs `/metadata`), so it is
            // refused here with a clear message (found by fuzzing, see tests/fuzz/regressions/).
            None => return Err(D::Error::custom("request.object: missing field `metadata`")),
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

/// Serializes the `admission.k8s.io/v1` AdmissionReview answering with `response`:
/// `{"apiVersion", "kind", "response": {"uid", "allowed", "status", "patch", "patchType", "auditAnnotations",
/// "warnings"}}`, the last four only when set. `patch` is written as base64 straight into the output (base64
/// needs no JSON escaping). The review's type comes from the request; a response not built from a request
/// gets `admission.k8s.io/v1`.
pub(super) fn review_bytes(response: &AdmissionResponse) -> Vec<u8> {
    fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
        serde_json::to_writer(out, value)
            .expect("strings, maps and kube's Status always serialize");
    }
    fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
        if value.is_empty() {
            default
        } else {
            value
        }
    }
    let patch_len = response.patch.as_ref().map_or(0, |p| p.len() * 4 / 3 + 4);
    let mut out = Vec::with_capacity(512 + patch_len);
    out.extend_from_slice(br#"{"apiVersion":"#);
    json(
        &mut out,
        or(&response.types.api_version, "admission.k8s.io/v1"),
    );
    out.extend_from_slice(br#","kind":"#);
    json(&mut out, or(&response.types.kind, "AdmissionReview"));
    out.extend_from_slice(br#","response":{"uid":"#);
    json(&mut out, &response.uid);
    out.extend_from_slice(br#","allowed":"#);
    out.extend_from_slice(if response.allowed { b"true" } else { b"false" });
    out.extend_from_slice(br#","status":"#);
    json(&mut out, &response.result);
    if let Some(patch) = &response.patch {
        out.extend_from_slice(br#","patch":""#);
        let start = out.len();
        let encoded = base64::encoded_len(patch.len(), true)
            .expect("a patch in memory has a base64 length that fits in memory");
        out.resize(start + encoded, 0);
        base64::engine::general_purpose::STANDARD
            .encode_slice(patch, &mut out[start..])
            .expect("the output was sized with base64::encoded_len");
        out.extend_from_slice(br#"","patchType":"JSONPatch""#);
    }
    if !response.audit_annotations.is_empty() {
        out.extend_from_slice(br#","auditAnnotations":"#);
        json(&mut out, &response.audit_annotations);
    }
    if let Some(warnings) = &response.warnings {
        out.extend_from_slice(br#","warnings":"#);
        json(&mut out, warnings);
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn reviews_are_json_with_a_base64_patch() {
        let mut response = AdmissionResponse::invalid("x");
        response.uid = "u\"1".into();
        response.allowed = true;
        response.patch = Some(br#"[{"op":"add","path":"/a","value":1}]"#.to_vec());
        response.warnings = Some(vec!["w\n".into()]);
        response.audit_annotations.insert("k".into(), "v".into());
        let review: Value = serde_json::from_slice(&review_bytes(&response)).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(review["kind"], "AdmissionReview");
        let r = &review["response"];
        assert_eq!(r["uid"], "u\"1");
        assert_eq!(r["allowed"], true);
        assert_eq!(
            r["patch"], "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2EiLCJ2YWx1ZSI6MX1d",
            "standard base64 with padding"
        );
        assert_eq!(r["patchType"], "JSONPatch");
        assert_eq!(r["warnings"], json!(["w\n"]));
        assert_eq!(r["auditAnnotations"], json!({"k": "v"}));
        assert_eq!(r["status"]["message"], "x");
    }

    #[test]
    fn optional_fields_are_omitted() {
        let mut response = AdmissionResponse::invalid("x");
        response.types = TypeMeta::default();
        let review: Value = serde_json::from_slice(&review_bytes(&response)).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        let r = review["response"].as_object().unwrap();
        assert_eq!(
            r.keys().map(String::as_str).collect::<Vec<_>>(),
            ["uid", "allowed", "status"]
        );
        assert_eq!(r["allowed"], false);
    }
}
