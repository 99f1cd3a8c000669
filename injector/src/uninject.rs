//! Removes what injection added to a pod or pod template, using the `weft.dev/inject-status` record:
//! the recorded containers, init containers and volumes (by name), the recorded annotations and labels (restoring
//! any value they replaced), the status annotation (or the earlier record it replaced, put back), and the parents
//! injection created if they are now empty. Without a status record nothing is changed.

use crate::status::{InjectStatus, STATUS_ANNOTATION};
use jsonptr::Pointer;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What uninject did to one pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uninjected {
    /// What the status annotation records was removed.
    Removed,
    /// Nothing of Weft's was found.
    Unchanged,
}

/// The status annotation could not be read.
#[derive(Debug, thiserror::Error)]
#[error("metadata.annotations[{STATUS_ANNOTATION}]: cannot be read ({0}); remove Weft's containers by hand")]
pub struct UninjectError(String);

/// Removes Weft's additions from a pod or pod template (`{metadata, spec}`).
pub fn uninject(pod: &mut Value) -> Result<Uninjected, UninjectError> {
    let status = match annotations(pod).and_then(|a| a.get(STATUS_ANNOTATION)) {
        None => return Ok(Uninjected::Unchanged),
        Some(Value::String(s)) => {
            InjectStatus::parse(s).map_err(|e| UninjectError(e.to_string()))?
        }
        Some(_) => return Err(UninjectError("the value is not a string".into())),
    };
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        remove_named(spec, "containers", &status.containers);
        remove_named(spec, "initContainers", &status.init_containers);
        remove_named(spec, "volumes", &status.volumes);
    }
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(map) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            // A record the status replaced is listed in it, and put back in place by `restore`.
            if !status.annotations.contains_key(STATUS_ANNOTATION) {
                map.shift_remove(STATUS_ANNOTATION);
            }
            restore(map, &status.annotations);
        }
        if let Some(map) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            restore(map, &status.labels);
        }
    }
    for parent in status.parents.iter().rev() {
        remove_if_empty(pod, parent);
    }
    Ok(Uninjected::Removed)
}

fn annotations(pod: &Value) -> Option<&Map<String, Value>> {
    pod.get("metadata")?.get("annotations")?.as_object()
}

fn remove_named(spec: &mut Map<String, Value>, field: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    if let Some(items) = spec.get_mut(field).and_then(Value::as_array_mut) {
        items.retain(|item| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            !names.iter().any(|n| n == name)
        });
    }
}

fn restore(map: &mut Map<String, Value>, recorded: &BTreeMap<String, Option<String>>) {
    for (key, previous) in recorded {
        match previous {
            None => {
                map.shift_remove(key);
            }
            Some(value) => {
                map.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
}

fn remove_if_empty(pod: &mut Value, pointer: &str) {
    let Ok(path) = Pointer::parse(pointer) else {
        return;
    };
    let empty = match path.resolve(pod) {
        Ok(Value::Object(m)) => m.is_empty(),
        Ok(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if empty {
        path.delete(pod);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn without_a_status_nothing_changes() {
        let mut pod =
            json!({"metadata": {"annotations": {"weft.dev/inject": "enabled"}}, "spec": {}});
        let before = pod.clone();
        assert_eq!(uninject(&mut pod).unwrap(), Uninjected::Unchanged);
        assert_eq!(pod, before);
    }

    #[test]
    fn restores_replaced_values_and_removes_created_parents() {
        let status = r#"{"containers":["weft-proxy"],"annotations":{"a":"old","b":null},"labels":{"l":null},"parents":["/metadata/labels","/spec/volumes"]}"#;
        let mut pod = json!({
            "metadata": {"annotations": {"a": "new", "b": "x", "keep": "1", "weft.dev/inject-status": status}, "labels": {"l": "v"}},
            "spec": {"containers": [{"name": "weft-proxy"}, {"name": "app"}], "volumes": []},
        });
        assert_eq!(uninject(&mut pod).unwrap(), Uninjected::Removed);
        assert_eq!(
            pod,
            json!({
                "metadata": {"annotations": {"a": "old", "keep": "1"}},
                "spec": {"containers": [{"name": "app"}]},
            })
        );
    }

    #[test]
    fn unreadable_status_is_an_error_naming_the_annotation() {
        let mut pod = json!({"metadata": {"annotations": {"weft.dev/inject-status": "{"}}});
        let err = uninject(&mut pod).unwrap_err().to_string();
        assert!(err.contains("weft.dev/inject-status"), "{err}");
    }
}
