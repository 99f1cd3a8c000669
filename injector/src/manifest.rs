//! Offline processing of multi-document YAML manifests for `weft inject` and `weft uninject`: each Kubernetes
//! object is handled at its pod template, every other object passes through untouched, and documents stay in
//! order. Everything is produced in memory, so invalid input yields an error and no partial output.
//!
//! | kind                                                    | pod template                     |
//! |---------------------------------------------------------|----------------------------------|
//! | Pod                                                     | the object itself                |
//! | Deployment, StatefulSet, DaemonSet, ReplicaSet, Job     | `spec.template`                  |
//! | CronJob                                                 | `spec.jobTemplate.spec.template` |
//! | List                                                    | each of `items`, recursively     |

use crate::{
    decision::{Decision, Injector, INJECT_ANNOTATION, NO_TRUST_ANCHORS},
    status::{InjectStatus, STATUS_ANNOTATION},
    uninject::{uninject, Uninjected},
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How `weft inject` changes pod templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectMode {
    /// Only add `weft.dev/inject: enabled`; the webhook injects at admission.
    Annotate,
    /// Inject the proxy now, with exactly the webhook's code, the namespace counted as enabled.
    Manual,
}

/// The output YAML and one report line per object (plus warnings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    pub yaml: String,
    pub report: Vec<String>,
}

/// Invalid input. Each message names the document (1-based) and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("document {doc}: invalid YAML: {message}")]
    Yaml { doc: usize, message: String },
    #[error("document {doc}{object}: {field}: {message}")]
    Field {
        doc: usize,
        object: String,
        field: String,
        message: String,
    },
    #[error("document {doc}{object}: {message}")]
    Object {
        doc: usize,
        object: String,
        message: String,
    },
}

/// `weft inject`.
pub fn inject(
    input: &str,
    injector: &Injector,
    mode: InjectMode,
) -> Result<Processed, ManifestError> {
    process(input, &mut |template, ctx| {
        inject_template(template, ctx, injector, mode)
    })
}

/// `weft uninject`.
pub fn uninject_manifest(input: &str) -> Result<Processed, ManifestError> {
    process(input, &mut |template, ctx| match uninject(template) {
        Ok(Uninjected::Removed) => Ok(vec![format!("{}: uninjected", ctx.object)]),
        Ok(Uninjected::Unchanged) => Ok(vec![format!("{}: unchanged (not injected)", ctx.object)]),
        Err(e) => Err(ctx.error(e.to_string())),
    })
}

/// Where a pod template was found, for reports and errors.
struct Context<'a> {
    doc: usize,
    object: String,
    namespace: &'a str,
    template_path: &'a str,
}

impl Context<'_> {
    fn error(&self, message: String) -> ManifestError {
        ManifestError::Object {
            doc: self.doc,
            object: format!(" ({})", self.object),
            message,
        }
    }
}

type TemplateFn<'f> =
    dyn FnMut(&mut Value, &Context<'_>) -> Result<Vec<String>, ManifestError> + 'f;

fn process(input: &str, f: &mut TemplateFn<'_>) -> Result<Processed, ManifestError> {
    let mut docs = Vec::new();
    for (i, document) in serde_norway::Deserializer::from_str(input).enumerate() {
        let value = Value::deserialize(document).map_err(|e| ManifestError::Yaml {
            doc: i + 1,
            message: e.to_string(),
        })?;
        docs.push(value);
    }
    let mut report = Vec::new();
    let mut yaml = String::new();
    let mut first = true;
    for (i, doc) in docs.iter_mut().enumerate() {
        if doc.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        visit(doc, i + 1, "", f, &mut report)?;
        if !first {
            yaml.push_str("---\n");
        }
        first = false;
        let text = serde_norway::to_string(doc).map_err(|e| ManifestError::Yaml {
            doc: i + 1,
            message: e.to_string(),
        })?;
        yaml.push_str(&text);
    }
    Ok(Processed { yaml, report })
}

/// The path from the object to its pod template, by API group and kind; `None` for objects that pass through
/// (including custom resources that reuse a kind name, such as another group's `Job`).
fn template_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    match (group, kind) {
        ("", "Pod") => Some(&[]),
        ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => Some(&["spec", "template"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group `""`).
fn api_group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

fn visit(
    object: &mut Value,
    doc: usize,
    prefix: &str,
    f: &mut TemplateFn<'_>,
    report: &mut Vec<String>,
) -> Result<(), ManifestError> {
    let field_error = |object: String, field: String, message: &str| ManifestError::Field {
        doc,
        object,
        field,
        message: message.to_string(),
    };
    let Some(map) = object.as_object() else {
        let message =
            "expected a Kubernetes object (a mapping with apiVersion and kind)".to_string();
        return Err(match prefix.strip_suffix('.') {
            None => ManifestError::Object {
                doc,
                object: String::new(),
                message,
            },
            Some(field) => ManifestError::Field {
                doc,
                object: String::new(),
                field: field.to_string(),
                message,
            },
        });
    };
    let Some(kind) = map.get("kind").and_then(Value::as_str).map(str::to_string) else {
        return Err(field_error(
            String::new(),
            format!("{prefix}kind"),
            "missing or not a string",
        ));
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string();
    let group = api_group(&api_version);
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let object_name = format!("{}/{name}", kind.to_ascii_lowercase());
    let namespace = map
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let label = format!(" ({object_name})");

    if kind == "List" && group.is_empty() {
        let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) else {
            return Err(field_error(
                label,
                format!("{prefix}items"),
                "missing or not a list",
            ));
        };
        for (i, item) in items.iter_mut().enumerate() {
            visit(item, doc, &format!("{prefix}items[{i}]."), f, report)?;
        }
        return Ok(());
    }
    let Some(path) = template_path(group, &kind) else {
        report.push(format!(
            "{object_name}: unchanged ({api_version} {kind} has no pod template)"
        ));
        return Ok(());
    };
    let mut template = object;
    let mut walked = String::from(prefix);
    for token in path {
        walked.push_str(token);
        template = match template.get_mut(*token) {
            Some(next) if next.is_object() => next,
            _ => {
                return Err(field_error(
                    label,
                    walked,
                    "missing: a workload needs a pod template",
                ))
            }
        };
        walked.push('.');
    }
    if !template.get("spec").is_some_and(Value::is_object) {
        return Err(field_error(
            label,
            format!("{walked}spec"),
            "missing: a pod template needs a spec with containers",
        ));
    }
    let ctx = Context {
        doc,
        object: object_name,
        namespace: &namespace,
        template_path: &walked,
    };
    report.extend(f(template, &ctx)?);
    Ok(())
}

fn inject_template(
    template: &mut Value,
    ctx: &Context<'_>,
    injector: &Injector,
    mode: InjectMode,
) -> Result<Vec<String>, ManifestError> {
    let enabled: BTreeMap<String, String> =
        [(INJECT_ANNOTATION.to_string(), "enabled".to_string())].into();
    let decision = injector
        .inject(template, ctx.namespace, Some(&enabled))
        .map_err(|rejection| ctx.error(rejection.message))?;
    // Annotating adds no proxy: the webhook injects later, with the controller's trust anchors.
    let mut lines: Vec<String> = decision
        .warnings()
        .iter()
        .filter(|w| mode == InjectMode::Manual || w.as_str() != NO_TRUST_ANCHORS)
        .map(|w| format!("{}: warning: {w}", ctx.object))
        .collect();
    match decision {
        Decision::Skip { reason, .. } => lines.push(format!("{}: skipped ({reason})", ctx.object)),
        Decision::Inject { patch, .. } => match mode {
            InjectMode::Manual => {
                json_patch::patch(template, &patch).map_err(|e| {
                    ctx.error(format!(
                        "{}: cannot apply the injection patch: {e}",
                        ctx.template_path.trim_end_matches('.')
                    ))
                })?;
                lines.push(format!("{}: injected", ctx.object));
            }
            InjectMode::Annotate => {
                let added = annotate(template).map_err(|field| {
                    ctx.error(format!(
                        "{}{field} must be a mapping (or absent) to add {INJECT_ANNOTATION}",
                        ctx.template_path
                    ))
                })?;
                let what = if added { "added" } else { "already set" };
                lines.push(format!(
                    "{}: injected ({INJECT_ANNOTATION}: enabled {what})",
                    ctx.object
                ));
            }
        },
    }
    Ok(lines)
}

/// Adds `weft.dev/inject: enabled` and records it (and any parent created) in the status annotation, so that
/// uninject removes exactly that. Returns false when the template already opts in; the field (`metadata` or
/// `metadata.annotations`) that is neither a mapping, absent nor null when it cannot add it. A null parent is
/// replaced, as Kubernetes reads null as absent, and recorded like a missing one.
fn annotate(template: &mut Value) -> Result<bool, &'static str> {
    let Some(obj) = template.as_object_mut() else {
        return Err("");
    };
    let mut status = InjectStatus::default();
    let metadata = obj.entry("metadata").or_insert(Value::Null);
    if metadata.is_null() {
        status.parents.push("/metadata".into());
        *metadata = Value::Object(Map::new());
    }
    let Some(metadata) = metadata.as_object_mut() else {
        return Err("metadata");
    };
    let annotations = metadata.entry("annotations").or_insert(Value::Null);
    if annotations.is_null() {
        status.parents.push("/metadata/annotations".into());
        *annotations = Value::Object(Map::new());
    }
    let Some(annotations) = annotations.as_object_mut() else {
        return Err("metadata.annotations");
    };
    if annotations.get(INJECT_ANNOTATION).and_then(Value::as_str) == Some("enabled") {
        return Ok(false);
    }
    status
        .annotations
        .insert(INJECT_ANNOTATION.to_string(), None);
    annotations.insert(INJECT_ANNOTATION.to_string(), "enabled".into());
    annotations.insert(
        STATUS_ANNOTATION.to_string(),
        status.to_annotation_value().into(),
    );
    Ok(true)
}
