//! Where the controller's gRPC API is and which name its certificate has, read from the
//! installation's objects: pure functions over the Deployment, its pods and the trust anchors
//! ConfigMap.

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Container, Pod},
};

/// The container of the controller in the chart's Deployment.
pub const CONTROLLER_CONTAINER: &str = "weft-controller";
/// The key of the trust anchors in the chart's ConfigMap.
pub const TRUST_ANCHORS_KEY: &str = "ca-bundle.crt";

// The controller's defaults for the flags its identity is made of (`weft-controller --help`).
const DEFAULT_GRPC_PORT: u16 = 8090;
const DEFAULT_SERVICE_ACCOUNT: &str = "weft-controller";
const DEFAULT_CONTROL_PLANE_NAMESPACE: &str = "weft";
const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// What the Deployment says about the controller's gRPC server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerGrpc {
    /// The port `--grpc-addr` listens on.
    pub port: u16,
    /// The controller's mesh identity, which its gRPC certificate is issued for:
    /// `<service-account>.<ns>.serviceaccount.identity.<ns>.<trust-domain>`.
    pub server_name: String,
    /// The label selector of the Deployment's pods (`k=v,...`).
    pub selector: String,
}

/// The value of `--flag=value` or `--flag value` in `args` (the last one wins, as with clap).
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut found = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg
            .strip_prefix(flag)
            .and_then(|rest| rest.strip_prefix('='))
        {
            found = Some(value);
        } else if arg == flag {
            found = iter.next().map(String::as_str);
        }
    }
    found
}

/// The controller's gRPC port, identity and pod selector from its Deployment; the flags it
/// does not set have the controller's defaults.
pub fn controller_grpc(deployment: &Deployment) -> Result<ControllerGrpc, String> {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let spec = deployment
        .spec
        .as_ref()
        .ok_or_else(|| format!("Deployment {name} has no spec"))?;
    let containers = spec
        .template
        .spec
        .as_ref()
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let container: &Container = containers
        .iter()
        .find(|c| c.name == CONTROLLER_CONTAINER)
        .ok_or_else(|| {
            format!("Deployment {name} has no container named {CONTROLLER_CONTAINER}")
        })?;
    let args = container.args.as_deref().unwrap_or_default();
    let port = match flag_value(args, "--grpc-addr") {
        None => DEFAULT_GRPC_PORT,
        Some(addr) => addr
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("Deployment {name}: --grpc-addr={addr} has no port"))?,
    };
    let sa = flag_value(args, "--service-account").unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    let ns =
        flag_value(args, "--control-plane-namespace").unwrap_or(DEFAULT_CONTROL_PLANE_NAMESPACE);
    let domain = flag_value(args, "--identity-trust-domain").unwrap_or(DEFAULT_TRUST_DOMAIN);
    let mut labels: Vec<_> = spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    if labels.is_empty() {
        return Err(format!(
            "Deployment {name} selects its pods without matchLabels: name a pod with --addr (e.g. after kubectl port-forward)"
        ));
    }
    Ok(ControllerGrpc {
        port,
        server_name: weft_core::Mesh::new(ns, domain).identity(weft_core::ServiceAccountRef {
            namespace: ns,
            name: sa,
        }),
        selector: labels.join(","),
    })
}

/// Whether the pod is running, Ready and not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

/// The name of the first ready pod by name (so repeated calls pick the same one).
pub fn pick_ready_pod(pods: &[Pod]) -> Option<String> {
    let mut names: Vec<_> = pods
        .iter()
        .filter(|p| is_ready(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The PEM trust anchors of the ConfigMap.
pub fn trust_anchors(config_map: &ConfigMap) -> Result<String, String> {
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    config_map
        .data
        .as_ref()
        .and_then(|d| d.get(TRUST_ANCHORS_KEY))
        .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
        .cloned()
        .ok_or_else(|| {
            format!("ConfigMap {name} has no PEM certificates under {TRUST_ANCHORS_KEY}")
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn deployment(args: &[&str]) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "weft", "namespace": "mesh"},
            "spec": {
                "selector": {"matchLabels": {
                    "app.kubernetes.io/name": "weft",
                    "app.kubernetes.io/instance": "weft",
                }},
                "template": {"spec": {"containers": [
                    {"name": "other", "args": ["--grpc-addr=0.0.0.0:1"]},
                    {"name": "weft-controller", "args": args},
                ]}},
            },
        }))
        .unwrap()
    }

    #[test]
    fn identity_and_port_come_from_the_chart_args() {
        let grpc = controller_grpc(&deployment(&[
            "--admin-addr=0.0.0.0:9990",
            "--grpc-addr=0.0.0.0:8091",
            "--service-account=mesh-weft",
            "--control-plane-namespace=mesh",
            "--identity-trust-domain=example.org",
        ]))
        .unwrap();
        assert_eq!(
            grpc,
            ControllerGrpc {
                port: 8091,
                server_name: "mesh-weft.mesh.serviceaccount.identity.mesh.example.org".into(),
                selector: "app.kubernetes.io/instance=weft,app.kubernetes.io/name=weft".into(),
            }
        );
    }

    #[test]
    fn unset_flags_have_the_controllers_defaults() {
        let grpc = controller_grpc(&deployment(&[])).unwrap();
        assert_eq!(grpc.port, 8090);
        assert_eq!(
            grpc.server_name,
            "weft-controller.weft.serviceaccount.identity.weft.cluster.local"
        );
        // The two-argument form, and the last flag wins.
        let grpc = controller_grpc(&deployment(&[
            "--service-account",
            "a",
            "--service-account=b",
            "--grpc-addr",
            "[::]:7000",
        ]))
        .unwrap();
        assert_eq!(grpc.port, 7000);
        assert!(grpc.server_name.starts_with("b.weft."), "{grpc:?}");
    }

    #[test]
    fn a_deployment_without_the_controller_or_port_is_an_error() {
        let mut d = deployment(&["--grpc-addr=nowhere"]);
        assert!(controller_grpc(&d)
            .unwrap_err()
            .contains("--grpc-addr=nowhere has no port"));
        if let Some(spec) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            spec.containers.retain(|c| c.name != CONTROLLER_CONTAINER);
        }
        assert!(controller_grpc(&d)
            .unwrap_err()
            .contains("no container named weft-controller"));
    }

    fn pod(name: &str, phase: &str, ready: &str, deleting: bool) -> Pod {
        let mut meta = serde_json::json!({"name": name});
        if deleting {
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": meta,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]},
        }))
        .unwrap()
    }

    #[test]
    fn picks_a_ready_pod() {
        let pods = [
            pod("a-starting", "Running", "False", false),
            pod("b-leaving", "Running", "True", true),
            pod("d-ready", "Running", "True", false),
            pod("c-ready", "Running", "True", false),
            pod("a-pending", "Pending", "False", false),
        ];
        assert_eq!(pick_ready_pod(&pods).as_deref(), Some("c-ready"));
        assert_eq!(pick_ready_pod(&pods[..2]), None);
    }

    #[test]
    fn trust_anchors_need_pem() {
        let cm = |data: serde_json::Value| -> ConfigMap {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "weft-identity-trust-anchors"}, "data": data})).unwrap()
        };
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(
            trust_anchors(&cm(serde_json::json!({"ca-bundle.crt": pem}))).unwrap(),
            pem
        );
        assert!(trust_anchors(&cm(serde_json::json!({"ca.crt": pem})))
            .unwrap_err()
            .contains("weft-identity-trust-anchors has no PEM certificates under ca-bundle.crt"));
    }
}
