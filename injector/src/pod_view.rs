//! A borrowed, read-only view of the parts of a pod (or pod template) that injection looks at. It is built
//! without copying the pod, either from a JSON value or from the webhook's parsed request object, so the cost
//! of a decision does not grow with the size of the pod.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A string map that is either part of a JSON document or already parsed (from `ObjectMeta`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StringMap<'a> {
    Json(&'a Map<String, Value>),
    Parsed(&'a BTreeMap<String, String>),
}

/// A map value that should have been a string but is not (possible in hand-written YAML: `key: true`).
#[derive(Debug)]
pub(crate) struct NotAString<'a> {
    pub key: &'a str,
}

impl<'a> StringMap<'a> {
    pub(crate) fn get(&self, key: &'a str) -> Result<Option<&'a str>, NotAString<'a>> {
        match self {
            StringMap::Parsed(map) => Ok(map.get(key).map(String::as_str)),
            StringMap::Json(map) => match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(NotAString { key }),
            },
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PodView<'a> {
    /// `metadata` exists as an object.
    pub metadata_present: bool,
    /// `metadata.annotations`, when it exists as an object.
    pub annotations: Option<StringMap<'a>>,
    /// `metadata.labels`, when it exists as an object.
    pub labels: Option<StringMap<'a>>,
    /// `spec`, when it exists as an object.
    pub spec: Option<&'a Map<String, Value>>,
}

impl<'a> PodView<'a> {
    /// A view of a pod or pod template given as JSON (`{metadata, spec}`).
    pub(crate) fn from_json(pod: &'a Value) -> Self {
        let metadata = pod.get("metadata").and_then(Value::as_object);
        Self {
            metadata_present: metadata.is_some(),
            annotations: metadata
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object)
                .map(StringMap::Json),
            labels: metadata
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object)
                .map(StringMap::Json),
            spec: pod.get("spec").and_then(Value::as_object),
        }
    }

    /// A view of a pod from the webhook request: parsed metadata and the remaining fields as JSON.
    pub(crate) fn from_parts(
        annotations: Option<&'a BTreeMap<String, String>>,
        labels: Option<&'a BTreeMap<String, String>>,
        rest: &'a Value,
    ) -> Self {
        Self {
            metadata_present: true,
            annotations: annotations.map(StringMap::Parsed),
            labels: labels.map(StringMap::Parsed),
            spec: rest.get("spec").and_then(Value::as_object),
        }
    }

    pub(crate) fn annotation(&self, key: &'a str) -> Result<Option<&'a str>, NotAString<'a>> {
        match &self.annotations {
            Some(map) => map.get(key),
            None => Ok(None),
        }
    }

    /// The Weft annotation `weft_key` under Weft's spelling or Linkerd's (Weft's wins; see
    /// [`weft_core::linkerd`]).
    pub(crate) fn setting(
        &self,
        weft_key: &'a str,
    ) -> Result<Option<weft_core::linkerd::Found<'a>>, NotAString<'a>> {
        weft_core::linkerd::try_lookup(weft_key, |key| self.annotation(key))
    }

    pub(crate) fn label(&self, key: &'a str) -> Result<Option<&'a str>, NotAString<'a>> {
        match &self.labels {
            Some(map) => map.get(key),
            None => Ok(None),
        }
    }

    pub(crate) fn spec_field(&self, key: &str) -> Option<&'a Value> {
        self.spec.and_then(|s| s.get(key))
    }

    pub(crate) fn spec_array(&self, key: &str) -> &'a [Value] {
        self.spec_field(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn host_network(&self) -> bool {
        self.spec_field("hostNetwork").and_then(Value::as_bool) == Some(true)
    }

    /// App containers and init containers, each with a flag telling whether it is an init container.
    pub(crate) fn all_containers(&self) -> impl Iterator<Item = (&'a Value, bool)> {
        self.spec_array("containers")
            .iter()
            .map(|c| (c, false))
            .chain(self.spec_array("initContainers").iter().map(|c| (c, true)))
    }
}

/// One declared container port.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeclaredPort<'a> {
    pub container: &'a str,
    pub name: Option<&'a str>,
    pub port: Option<i64>,
    pub tcp: bool,
}

pub(crate) fn container_name(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn container_ports(container: &Value) -> impl Iterator<Item = DeclaredPort<'_>> {
    let name = container_name(container);
    container
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(move |p| DeclaredPort {
            container: name,
            name: p.get("name").and_then(Value::as_str),
            port: p.get("containerPort").and_then(Value::as_i64),
            tcp: matches!(
                p.get("protocol").and_then(Value::as_str),
                None | Some("TCP")
            ),
        })
}

/// Whether an init container keeps running beside the app (a native sidecar).
pub(crate) fn is_native_sidecar(container: &Value) -> bool {
    container.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}
