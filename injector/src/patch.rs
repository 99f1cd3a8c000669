//! Builds the RFC 6902 JSON patch that injects a pod. Operations are emitted directly from what is added (never
//! by diffing pods), so the cost grows with what is added, not with the size of the pod. Pointer tokens are
//! escaped by `jsonptr` (`~` → `~0`, `/` → `~1`). A parent that is absent is added first and recorded in the
//! status annotation, so uninject can remove it again.

use crate::{
    config::{ProxyConfig, CREATED_BY},
    pod_view::{container_name, container_ports, is_native_sidecar, PodView},
    rejection::Rejection,
    rendered::RenderedSidecars,
    sidecar,
    status::{InjectStatus, STATUS_ANNOTATION},
};
use json_patch::{AddOperation, Patch, PatchOperation};
use jsonptr::PointerBuf;
use serde_json::Value;

pub use weft_core::names::CONTROL_PLANE_NS_LABEL;
pub use weft_core::names::CREATED_BY_ANNOTATION;
pub use weft_core::names::PROXY_VERSION_ANNOTATION;
/// Tells `kubectl logs/exec` which container to pick when none is named: set to the first app container when
/// the proxy goes first in `containers` and the pod does not set it already.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// What an operation adds: plain JSON, or one of the objects of [`sidecar`], which depend only on the effective
/// configuration (and the inbound ports) and are produced when the plan is turned into a patch or JSON.
#[derive(Debug)]
enum AddValue {
    Json(Value),
    InitContainer,
    ProxyContainer {
        inbound_ports: Vec<u16>,
    },
    /// One of [`sidecar::volumes`], by index.
    Volume(usize),
}

/// The `add` operations that inject one pod, with the effective configuration they were planned for.
#[derive(Debug)]
pub(crate) struct PatchPlan {
    config: ProxyConfig,
    /// Each operation's path, an RFC 6901 JSON pointer, and what it adds.
    ops: Vec<(String, AddValue)>,
}

/// The JSON pointer of `tokens`, each escaped per RFC 6901 (`~` → `~0`, `/` → `~1`).
fn pointer(tokens: &[&str]) -> String {
    let mut path = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for token in tokens {
        path.push('/');
        for c in token.chars() {
            match c {
                '~' => path.push_str("~0"),
                '/' => path.push_str("~1"),
                c => path.push(c),
            }
        }
    }
    path
}

impl PatchPlan {
    /// The RFC 6902 patch.
    pub(crate) fn into_patch(self) -> Patch {
        let config = self.config;
        Patch(
            self.ops
                .into_iter()
                .map(|(path, value)| {
                    let value = match value {
                        AddValue::Json(value) => value,
                        AddValue::InitContainer => sidecar::init_container(&config),
                        AddValue::ProxyContainer { inbound_ports } => {
                            sidecar::proxy_container(&config, &inbound_ports, config.native_sidecar)
                        }
                        AddValue::Volume(i) => sidecar::volumes()[i].take(),
                    };
                    let path =
                        PointerBuf::parse(path).expect("paths are built from escaped tokens");
                    PatchOperation::Add(AddOperation { path, value })
                })
                .collect(),
        )
    }

    /// Appends the patch as JSON to `out`, the same document `serde_json::to_vec(&self.into_patch())` gives.
    /// `rendered` is used when it was made for the plan's configuration.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>, rendered: Option<&RenderedSidecars>) {
        fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
            serde_json::to_writer(out, value).expect("JSON values and strings always serialize");
        }
        let rendered = rendered.and_then(|r| r.for_config(&self.config));
        out.push(b'[');
        for (i, (path, value)) in self.ops.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"op":"add","path":"#);
            json(out, path);
            out.extend_from_slice(br#","value":"#);
            match (value, rendered) {
                (AddValue::Json(value), _) => json(out, value),
                (AddValue::InitContainer, Some(r)) => r.write_init_container(out),
                (AddValue::ProxyContainer { inbound_ports }, Some(r)) => {
                    r.write_proxy_container(out, inbound_ports)
                }
                (AddValue::Volume(i), Some(r)) => r.write_volume(out, *i),
                (AddValue::InitContainer, None) => {
                    json(out, &sidecar::init_container(&self.config))
                }
                (AddValue::ProxyContainer { inbound_ports }, None) => json(
                    out,
                    &sidecar::proxy_container(
                        &self.config,
                        inbound_ports,
                        self.config.native_sidecar,
                    ),
                ),
                (AddValue::Volume(i), None) => json(out, &sidecar::volumes()[*i]),
            }
            out.push(b'}');
        }
        out.push(b']');
    }
}

struct Ops {
    ops: Vec<(String, AddValue)>,
    status: InjectStatus,
}

impl Ops {
    fn add(&mut self, tokens: &[&str], value: AddValue) {
        self.ops.push((pointer(tokens), value));
    }

    fn add_json(&mut self, tokens: &[&str], value: Value) {
        self.add(tokens, AddValue::Json(value));
    }

    /// Adds `tokens` as an empty object or array when it is absent, recording it as created.
    fn ensure_parent(&mut self, present: bool, tokens: &[&str], empty: Value) {
        if !present {
            let path = pointer(tokens);
            self.status.parents.push(path.clone());
            self.ops.push((path, AddValue::Json(empty)));
        }
    }
}

/// The patch for a pod that passed every check, with the effective configuration.
pub(crate) fn build(pod: &PodView<'_>, config: ProxyConfig) -> Result<PatchPlan, Rejection> {
    let mut ops = Ops {
        ops: Vec::with_capacity(16),
        status: InjectStatus::default(),
    };
    let native = config.native_sidecar;

    // metadata, annotations and labels
    ops.ensure_parent(
        pod.metadata_present,
        &["metadata"],
        Value::Object(Default::default()),
    );
    ops.ensure_parent(
        pod.annotations.is_some(),
        &["metadata", "annotations"],
        Value::Object(Default::default()),
    );
    ops.ensure_parent(
        pod.labels.is_some(),
        &["metadata", "labels"],
        Value::Object(Default::default()),
    );
    let mut annotations = vec![
        (PROXY_VERSION_ANNOTATION, config.proxy_version.clone()),
        (CREATED_BY_ANNOTATION, CREATED_BY.to_string()),
    ];
    let first_app = pod
        .spec_array("containers")
        .first()
        .map(container_name)
        .filter(|n| !n.is_empty());
    let default_set = pod
        .annotation(DEFAULT_CONTAINER_ANNOTATION)
        .map_err(|e| Rejection::not_a_string(e.key))?
        .is_some();
    if let (false, false, Some(app)) = (native, default_set, first_app) {
        annotations.push((DEFAULT_CONTAINER_ANNOTATION, app.to_string()));
    }
    for (key, value) in annotations {
        let previous = pod
            .annotation(key)
            .map_err(|e| Rejection::not_a_string(e.key))?;
        ops.status
            .annotations
            .insert(key.to_string(), previous.map(str::to_string));
        ops.add_json(&["metadata", "annotations", key], value.into());
    }
    let previous = pod
        .label(CONTROL_PLANE_NS_LABEL)
        .map_err(|e| Rejection::not_a_string(e.key))?;
    ops.status.labels.insert(
        CONTROL_PLANE_NS_LABEL.to_string(),
        previous.map(str::to_string),
    );
    ops.add_json(
        &["metadata", "labels", CONTROL_PLANE_NS_LABEL],
        config.mesh().control_plane_namespace().to_string().into(),
    );

    // containers
    let declared = pod
        .all_containers()
        .filter(|(c, init)| !init || is_native_sidecar(c))
        .flat_map(|(c, _)| container_ports(c))
        .filter_map(|p| Some((p.port?, p.tcp)));
    let inbound_ports = sidecar::inbound_ports(declared, &config.skip_inbound_ports);
    let proxy = AddValue::ProxyContainer { inbound_ports };

    ops.ensure_parent(
        pod.spec.is_some(),
        &["spec"],
        Value::Object(Default::default()),
    );
    let init_present = pod
        .spec_field("initContainers")
        .is_some_and(Value::is_array);
    ops.ensure_parent(
        init_present,
        &["spec", "initContainers"],
        Value::Array(Vec::new()),
    );
    ops.add(&["spec", "initContainers", "0"], AddValue::InitContainer);
    ops.status
        .init_containers
        .push(sidecar::INIT_NAME.to_string());
    if native {
        ops.add(&["spec", "initContainers", "1"], proxy);
        ops.status
            .init_containers
            .push(sidecar::PROXY_NAME.to_string());
    } else {
        let present = pod.spec_field("containers").is_some_and(Value::is_array);
        ops.ensure_parent(present, &["spec", "containers"], Value::Array(Vec::new()));
        ops.add(&["spec", "containers", "0"], proxy);
        ops.status.containers.push(sidecar::PROXY_NAME.to_string());
    }

    // volumes
    let volumes_present = pod.spec_field("volumes").is_some_and(Value::is_array);
    ops.ensure_parent(
        volumes_present,
        &["spec", "volumes"],
        Value::Array(Vec::new()),
    );
    for (i, name) in sidecar::VOLUME_NAMES.iter().enumerate() {
        ops.add(&["spec", "volumes", "-"], AddValue::Volume(i));
        ops.status.volumes.push(name.to_string());
    }

    // the record of all of the above, last; a record already there (`weft inject`'s, of the opt-in it added) is
    // kept in it, so that uninject puts it back
    if let Some(previous) = pod
        .annotation(STATUS_ANNOTATION)
        .map_err(|e| Rejection::not_a_string(e.key))?
    {
        ops.status
            .annotations
            .insert(STATUS_ANNOTATION.to_string(), Some(previous.to_string()));
    }
    let status = ops.status.to_annotation_value();
    ops.add_json(
        &["metadata", "annotations", STATUS_ANNOTATION],
        status.into(),
    );
    Ok(PatchPlan {
        config,
        ops: ops.ops,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn paths(patch: &Patch) -> Vec<String> {
        patch.0.iter().map(|op| op.path().to_string()).collect()
    }

    fn build_for(pod: &Value, config: &ProxyConfig) -> Patch {
        build(&PodView::from_json(pod), config.clone())
            .unwrap()
            .into_patch()
    }

    #[test]
    fn absent_parents_are_added_before_their_children() {
        let pod = json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "app"}]}});
        let plain = ProxyConfig {
            native_sidecar: false,
            ..ProxyConfig::default()
        };
        let patch = build_for(&pod, &plain);
        assert_eq!(
            paths(&patch),
            [
                "/metadata/annotations",
                "/metadata/labels",
                "/metadata/annotations/weft.dev~1proxy-version",
                "/metadata/annotations/weft.dev~1created-by",
                "/metadata/annotations/kubectl.kubernetes.io~1default-container",
                "/metadata/labels/weft.dev~1control-plane-ns",
                "/spec/initContainers",
                "/spec/initContainers/0",
                "/spec/containers/0",
                "/spec/volumes",
                "/spec/volumes/-",
                "/spec/volumes/-",
                "/spec/volumes/-",
                "/metadata/annotations/weft.dev~1inject-status",
            ]
        );
        let status = InjectStatus::parse(
            patch
                .0
                .last()
                .map(|op| match op {
                    PatchOperation::Add(add) => add.value.as_str().unwrap(),
                    _ => panic!("only add operations"),
                })
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            status.parents,
            [
                "/metadata/annotations",
                "/metadata/labels",
                "/spec/initContainers",
                "/spec/volumes"
            ]
        );
    }

    #[test]
    fn present_parents_are_not_replaced_and_native_sidecars_go_after_weft_init() {
        let pod = json!({
            "metadata": {"annotations": {}, "labels": {}},
            "spec": {"containers": [], "initContainers": [{"name": "m"}], "volumes": []},
        });
        let config = ProxyConfig {
            native_sidecar: true,
            ..ProxyConfig::default()
        };
        let patch = build_for(&pod, &config);
        let paths = paths(&patch);
        assert!(!paths.iter().any(|p| p == "/metadata/annotations"
            || p == "/spec/initContainers"
            || p == "/spec/volumes"));
        assert!(paths.contains(&"/spec/initContainers/1".to_string()));
        assert!(!paths.iter().any(|p| p.starts_with("/spec/containers")));
        assert!(
            !paths.iter().any(|p| p.contains("default-container")),
            "no default-container for native sidecars"
        );
    }

    #[test]
    fn pointers_are_escaped_as_jsonptr_escapes_them() {
        for tokens in [
            &["metadata", "annotations", "a/b~c/~1"][..],
            &["spec", "containers", "0"],
            &["x~0y", "", "/"],
        ] {
            assert_eq!(
                pointer(tokens),
                PointerBuf::from_tokens(tokens.iter().copied()).to_string()
            );
        }
    }

    #[test]
    fn written_json_is_the_patch_with_or_without_renderings() {
        let pod = json!({
            "metadata": {"annotations": {"a/b~c": "x"}},
            "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]}]},
        });
        for native in [false, true] {
            let config = ProxyConfig {
                native_sidecar: native,
                ..ProxyConfig::default()
            };
            let expected = serde_json::to_value(build_for(&pod, &config)).unwrap();
            let rendered = RenderedSidecars::new(&config).unwrap();
            let other = RenderedSidecars::new(&ProxyConfig {
                log_level: "trace".into(),
                ..config.clone()
            })
            .unwrap();
            for rendered in [None, Some(&rendered), Some(&other)] {
                let plan = build(&PodView::from_json(&pod), config.clone()).unwrap();
                let mut out = Vec::new();
                plan.write_json(&mut out, rendered);
                let written: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(written, expected, "native {native}, {rendered:?}");
            }
        }
    }

    /// Found by `tests/properties.rs`: injecting the output of `weft inject` (which records the opt-in it added in
    /// the status annotation) overwrote that record, so uninject left `weft.dev/inject: enabled` behind for good.
    #[test]
    fn an_earlier_status_record_is_kept_and_put_back_by_uninject() {
        let annotate_record =
            r#"{"annotations":{"weft.dev/inject":null},"parents":["/metadata/annotations"]}"#;
        let pod = json!({
            "metadata": {"annotations": {"weft.dev/inject": "enabled", STATUS_ANNOTATION: annotate_record, "z": "1"}},
            "spec": {"containers": [{"name": "app"}]},
        });
        let mut injected = pod.clone();
        json_patch::patch(&mut injected, &build_for(&pod, &ProxyConfig::default())).unwrap();
        let status = InjectStatus::parse(
            injected["metadata"]["annotations"][STATUS_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            status.annotations[STATUS_ANNOTATION].as_deref(),
            Some(annotate_record)
        );
        let mut restored = injected;
        crate::uninject::uninject(&mut restored).unwrap();
        // Byte for byte: the earlier record is back in its place, before "z".
        assert_eq!(
            serde_json::to_string(&restored).unwrap(),
            serde_json::to_string(&pod).unwrap()
        );
        crate::uninject::uninject(&mut restored).unwrap();
        assert_eq!(
            restored,
            json!({"metadata": {"annotations": {"z": "1"}}, "spec": {"containers": [{"name": "app"}]}})
        );
    }

    #[test]
    fn the_patch_does_not_grow_with_the_pod() {
        let env: Vec<Value> = (0..5000)
            .map(|i| json!({"name": format!("VAR_{i}"), "value": "x"}))
            .collect();
        let small = json!({"metadata": {}, "spec": {"containers": [{"name": "app"}]}});
        let huge = json!({"metadata": {}, "spec": {"containers": [{"name": "app", "env": env}]}});
        let config = ProxyConfig::default();
        let small_len = serde_json::to_vec(&build_for(&small, &config))
            .unwrap()
            .len();
        let huge_len = serde_json::to_vec(&build_for(&huge, &config))
            .unwrap()
            .len();
        assert_eq!(small_len, huge_len);
    }
}
