//! Builds the RFC 6902 JSON patch that injects a pod. Operations are emitted directly from what is added (never
//! by diffing pods), so the cost grows with what is added, not with the size of the pod. Pointer tokens are
//! escaped by `jsonptr` (`~` → `~0`, `/` → `~1`). A parent that is absent is added first and recorded in the
//! status annotation, so uninject can remove it again.

use crate::{
    config::{ProxyConfig, CREATED_BY},
    overrides::not_a_string,
    pod_view::{container_name, container_ports, is_native_sidecar, PodView},
    sidecar,
    status::{InjectStatus, STATUS_ANNOTATION},
    Rejection,
};
use json_patch::{AddOperation, Patch, PatchOperation};
use jsonptr::PointerBuf;
use serde_json::Value;

pub const PROXY_VERSION_ANNOTATION: &str = "weft.dev/proxy-version";
pub const CREATED_BY_ANNOTATION: &str = "weft.dev/created-by";
pub const CONTROL_PLANE_NS_LABEL: &str = "weft.dev/control-plane-ns";
/// Tells `kubectl logs/exec` which container to pick when none is named: set to the first app container when
/// the proxy goes first in `containers` and the pod does not set it already.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

struct Ops {
    ops: Vec<PatchOperation>,
    status: InjectStatus,
}

impl Ops {
    fn add(&mut self, tokens: &[&str], value: Value) {
        self.ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(tokens.iter().copied()),
            value,
        }));
    }

    /// Adds `tokens` as an empty object or array when it is absent, recording it as created.
    fn ensure_parent(&mut self, present: bool, tokens: &[&str], empty: Value) {
        if !present {
            let path = PointerBuf::from_tokens(tokens.iter().copied());
            self.status.parents.push(path.to_string());
            self.add(tokens, empty);
        }
    }
}

/// The patch for a pod that passed every check, with the effective configuration.
pub(crate) fn build(pod: &PodView<'_>, config: &ProxyConfig) -> Result<Patch, Rejection> {
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
        .map_err(|e| not_a_string(e.key))?
        .is_some();
    if let (false, false, Some(app)) = (native, default_set, first_app) {
        annotations.push((DEFAULT_CONTAINER_ANNOTATION, app.to_string()));
    }
    for (key, value) in annotations {
        let previous = pod.annotation(key).map_err(|e| not_a_string(e.key))?;
        ops.status
            .annotations
            .insert(key.to_string(), previous.map(str::to_string));
        ops.add(&["metadata", "annotations", key], value.into());
    }
    let previous = pod
        .label(CONTROL_PLANE_NS_LABEL)
        .map_err(|e| not_a_string(e.key))?;
    ops.status.labels.insert(
        CONTROL_PLANE_NS_LABEL.to_string(),
        previous.map(str::to_string),
    );
    ops.add(
        &["metadata", "labels", CONTROL_PLANE_NS_LABEL],
        config.control_plane_namespace.clone().into(),
    );

    // containers
    let declared = pod
        .all_containers()
        .filter(|(c, init)| !init || is_native_sidecar(c))
        .flat_map(|(c, _)| container_ports(c))
        .filter_map(|p| Some((p.port?, p.tcp)));
    let inbound = sidecar::inbound_ports(declared, &config.skip_inbound_ports);
    let proxy = sidecar::proxy_container(config, &inbound, native);

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
    ops.add(
        &["spec", "initContainers", "0"],
        sidecar::init_container(config),
    );
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

    // volume
    let volumes_present = pod.spec_field("volumes").is_some_and(Value::is_array);
    ops.ensure_parent(
        volumes_present,
        &["spec", "volumes"],
        Value::Array(Vec::new()),
    );
    ops.add(&["spec", "volumes", "-"], sidecar::token_volume());
    ops.status.volumes.push(sidecar::TOKEN_VOLUME.to_string());

    // the record of all of the above, last
    let status = ops.status.to_annotation_value();
    ops.add(
        &["metadata", "annotations", STATUS_ANNOTATION],
        status.into(),
    );
    Ok(Patch(ops.ops))
}
