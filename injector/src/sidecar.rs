//! The objects injection adds: the `weft-init` init container, the `weft-proxy` container (linkerd2-proxy), and
//! the volumes `weft-identity-token`, `weft-identity` and `weft-xtables-lock`.
//!
//! Both containers run from the proxy image (Linkerd's layout). `weft-init` runs
//! `/usr/lib/linkerd/linkerd2-proxy-init` as an unprivileged user with NET_ADMIN and NET_RAW (the image's
//! iptables binaries carry those file capabilities), with these arguments:
//!
//! ```text
//! --firewall-bin-path iptables-nft --firewall-save-bin-path iptables-nft-save   the nftables backend
//! --ipv6=false                        the proxy listens on IPv4 only
//! --incoming-proxy-port 4143          redirect inbound TCP to the proxy's inbound listener
//! --outgoing-proxy-port 4140          redirect outbound TCP to the proxy's outbound listener
//! --proxy-uid <uid>                   exempt the proxy's own traffic (default uid 2102)
//! --inbound-ports-to-ignore 4190,4191[,<skip-inbound-ports>]   the proxy's control and admin ports and skipped ports
//! --outbound-ports-to-ignore <skip-outbound-ports>              only when the list is not empty
//! ```
//!
//! `weft-proxy` runs the image's entrypoint, linkerd2-proxy-identity, which writes a private key and a CSR for
//! `LINKERD2_PROXY_IDENTITY_LOCAL_NAME` into `LINKERD2_PROXY_IDENTITY_DIR` (the in-memory `weft-identity`
//! volume) and then executes the proxy. The proxy reads the `LINKERD2_PROXY_*` environment of [`proxy_env`].

use crate::{config::ProxyConfig, values::PortList};
use serde_json::{json, Value};

pub use weft_core::names::{
    IDENTITY_VOLUME, INIT_CONTAINER as INIT_NAME, PROXY_CONTAINER as PROXY_NAME, PROXY_PORT_NAMES,
    TOKEN_AUDIENCE, TOKEN_VOLUME, VOLUME_NAMES, XTABLES_VOLUME,
};
/// Where the projected service-account token (`TOKEN_VOLUME`) is mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/weft.dev/identity";
/// The in-memory directory (`IDENTITY_VOLUME`) where the proxy's key, CSR and certificate live.
pub const IDENTITY_DIR: &str = "/var/run/weft/identity/end-entity";
/// The xtables lock directory of `weft-init` (its root filesystem is read-only).
pub const XTABLES_MOUNT_PATH: &str = "/run";
/// The proxy-init program inside the proxy image.
pub const PROXY_INIT_PATH: &str = "/usr/lib/linkerd/linkerd2-proxy-init";
/// The unprivileged user `weft-init` runs as.
pub const INIT_UID: u32 = 65534;

pub const INBOUND_PORT: u16 = weft_core::names::PROXY_INBOUND_PORT;
pub const OUTBOUND_PORT: u16 = 4140;
pub const ADMIN_PORT: u16 = 4191;
/// The proxy's tap port; bypasses iptables like the admin port (tap stays off: no `LINKERD2_PROXY_TAP_SVC_NAME`).
pub const CONTROL_PORT: u16 = 4190;
/// Ports an app container must not declare.
pub const PROXY_PORTS: [u16; 3] = [OUTBOUND_PORT, INBOUND_PORT, ADMIN_PORT];

fn resources(config: &ProxyConfig) -> Value {
    let r = &config.resources;
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    if let Some(q) = &r.cpu_request {
        requests.insert("cpu".into(), q.as_str().into());
    }
    if let Some(q) = &r.memory_request {
        requests.insert("memory".into(), q.as_str().into());
    }
    if let Some(q) = &r.cpu_limit {
        limits.insert("cpu".into(), q.as_str().into());
    }
    if let Some(q) = &r.memory_limit {
        limits.insert("memory".into(), q.as_str().into());
    }
    let mut out = serde_json::Map::new();
    if !requests.is_empty() {
        out.insert("requests".into(), requests.into());
    }
    if !limits.is_empty() {
        out.insert("limits".into(), limits.into());
    }
    out.into()
}

/// The iptables init container. It runs as an unprivileged user (so it also suits pods whose securityContext
/// says `runAsNonRoot: true`) with only NET_ADMIN and NET_RAW.
pub fn init_container(config: &ProxyConfig) -> Value {
    let mut ignore_inbound = format!("{CONTROL_PORT},{ADMIN_PORT}");
    if !config.skip_inbound_ports.is_empty() {
        ignore_inbound.push(',');
        ignore_inbound.push_str(&config.skip_inbound_ports.to_string());
    }
    let mut args = vec![
        "--firewall-bin-path".to_string(),
        "iptables-nft".to_string(),
        "--firewall-save-bin-path".to_string(),
        "iptables-nft-save".to_string(),
        "--ipv6=false".to_string(),
        "--incoming-proxy-port".to_string(),
        INBOUND_PORT.to_string(),
        "--outgoing-proxy-port".to_string(),
        OUTBOUND_PORT.to_string(),
        "--proxy-uid".to_string(),
        config.proxy_uid.to_string(),
        "--inbound-ports-to-ignore".to_string(),
        ignore_inbound,
    ];
    if !config.skip_outbound_ports.is_empty() {
        args.push("--outbound-ports-to-ignore".to_string());
        args.push(config.skip_outbound_ports.to_string());
    }
    args.extend(config.tuning.init_args());
    json!({
        "name": INIT_NAME,
        "image": config.init_image(),
        "imagePullPolicy": pull_policy(config),
        "command": [PROXY_INIT_PATH],
        "args": args,
        "resources": resources(config),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": { "add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"] },
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": INIT_UID,
            "runAsGroup": INIT_UID,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "volumeMounts": [
            { "name": XTABLES_VOLUME, "mountPath": XTABLES_MOUNT_PATH },
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
}

/// `IfNotPresent` unless the pod's `image-pull-policy` says otherwise.
fn pull_policy(config: &ProxyConfig) -> &str {
    config
        .tuning
        .image_pull_policy
        .as_deref()
        .unwrap_or("IfNotPresent")
}

fn field_env(name: &str, path: &str) -> Value {
    json!({ "name": name, "valueFrom": { "fieldRef": { "fieldPath": path } } })
}

fn value_env(name: &str, value: impl Into<String>) -> Value {
    json!({ "name": name, "value": value.into() })
}

/// The proxy container. `inbound_ports` are the app's TCP container ports, which the proxy serves.
pub fn proxy_container(config: &ProxyConfig, inbound_ports: &[u16], native_sidecar: bool) -> Value {
    proxy_container_with(config, inbound_list(inbound_ports), native_sidecar)
}

/// The value of `LINKERD2_PROXY_INBOUND_PORTS`: the ports, comma-separated.
pub(crate) fn inbound_list(inbound_ports: &[u16]) -> String {
    let mut list = String::with_capacity(inbound_ports.len() * 6);
    for (i, port) in inbound_ports.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&port.to_string());
    }
    list
}

/// The proxy's environment, `inbound` being the value of `LINKERD2_PROXY_INBOUND_PORTS`. The `_pod_*`
/// variables come first: later values refer to them as `$(_pod_ns)`, which the kubelet expands.
pub fn proxy_env(config: &ProxyConfig, inbound: String) -> Vec<Value> {
    let networks = config
        .cluster
        .cluster_networks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        field_env("_pod_name", "metadata.name"),
        field_env("_pod_ns", "metadata.namespace"),
        field_env("_pod_sa", "spec.serviceAccountName"),
        value_env("LINKERD2_PROXY_LOG", log_filter(config)),
        value_env("LINKERD2_PROXY_LOG_FORMAT", config.log_format.as_str()),
        value_env(
            "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
            format!("0.0.0.0:{ADMIN_PORT}"),
        ),
        value_env(
            "LINKERD2_PROXY_CONTROL_LISTEN_ADDR",
            format!("0.0.0.0:{CONTROL_PORT}"),
        ),
        value_env(
            "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
            format!("0.0.0.0:{INBOUND_PORT}"),
        ),
        value_env(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
            format!("127.0.0.1:{OUTBOUND_PORT}"),
        ),
        field_env("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"),
        value_env("LINKERD2_PROXY_INBOUND_PORTS", inbound),
        value_env(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            config.opaque_ports.to_string(),
        ),
        value_env(
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
            config.default_inbound_policy.as_str(),
        ),
        value_env("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", networks.clone()),
        value_env(
            "LINKERD2_PROXY_POLICY_SVC_ADDR",
            config.policy_api.addr.as_str(),
        ),
        value_env(
            "LINKERD2_PROXY_POLICY_SVC_NAME",
            config.policy_api.name.as_str(),
        ),
        value_env(
            "LINKERD2_PROXY_POLICY_WORKLOAD",
            r#"{"ns":"$(_pod_ns)","pod":"$(_pod_name)"}"#,
        ),
        value_env(
            "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
            config.destination_api.addr.as_str(),
        ),
        value_env(
            "LINKERD2_PROXY_DESTINATION_SVC_NAME",
            config.destination_api.name.as_str(),
        ),
        // Profile lookups (Destination.GetProfile) for the cluster's Service names and for
        // addresses in the cluster networks: the controller answers them from its endpoints index.
        value_env(
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
            format!("svc.{}.", config.cluster.cluster_domain),
        ),
        value_env(
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            networks.clone(),
        ),
        value_env("LINKERD2_PROXY_IDENTITY_DIR", IDENTITY_DIR),
    ];
    if let Some(anchors) = &config.trust_anchors {
        env.push(value_env(
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            anchors.pem(),
        ));
    }
    env.extend([
        value_env(
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            format!("{TOKEN_MOUNT_PATH}/token"),
        ),
        value_env(
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            config.local_identity(weft_core::ServiceAccountRef {
                namespace: "$(_pod_ns)",
                name: "$(_pod_sa)",
            }),
        ),
        value_env(
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
            config.identity_api.addr.as_str(),
        ),
        value_env(
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            config.identity_api.name.as_str(),
        ),
    ]);
    env.extend(config.tuning.env());
    config.tuning.add_additional_env(&mut env);
    env
}

/// The proxy's log filter: the configured one, and unless `proxy-log-http-headers: insecure`,
/// the directives that keep HTTP headers and requests out of the logs (as Linkerd does).
fn log_filter(config: &ProxyConfig) -> String {
    if config.tuning.log_http_headers {
        config.log_level.clone()
    } else {
        format!("{}{}", config.log_level, crate::tuning::NO_HTTP_HEADERS_LOG)
    }
}

/// The proxy container with `inbound` as the value of `LINKERD2_PROXY_INBOUND_PORTS` (see [`inbound_list`]).
pub(crate) fn proxy_container_with(
    config: &ProxyConfig,
    inbound: String,
    native_sidecar: bool,
) -> Value {
    let mut container = json!({
        "name": PROXY_NAME,
        "image": format!("{}:{}", config.proxy_image, config.proxy_version),
        "imagePullPolicy": pull_policy(config),
        "ports": [
            { "name": PROXY_PORT_NAMES[0], "containerPort": INBOUND_PORT, "protocol": "TCP" },
            { "name": PROXY_PORT_NAMES[1], "containerPort": ADMIN_PORT, "protocol": "TCP" },
        ],
        "env": proxy_env(config, inbound),
        "readinessProbe": {
            "httpGet": { "path": "/ready", "port": ADMIN_PORT },
            "initialDelaySeconds": 2,
        },
        "livenessProbe": {
            "httpGet": { "path": "/live", "port": ADMIN_PORT },
            "initialDelaySeconds": 10,
        },
        "resources": resources(config),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": config.proxy_uid,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "volumeMounts": [
            { "name": IDENTITY_VOLUME, "mountPath": IDENTITY_DIR },
            { "name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true },
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    config.tuning.add_resources(&mut container["resources"]);
    if let Some(gid) = config.tuning.gid {
        container["securityContext"]["runAsGroup"] = gid.into();
    }
    if native_sidecar {
        if let Some(obj) = container.as_object_mut() {
            obj.insert("restartPolicy".into(), "Always".into());
            obj.insert(
                "startupProbe".into(),
                json!({
                    "httpGet": { "path": "/ready", "port": ADMIN_PORT },
                    "periodSeconds": 1,
                    "failureThreshold": 120,
                }),
            );
        }
    }
    container
}

/// The volumes injection adds, in the order of [`VOLUME_NAMES`]: the projected service-account token the
/// proxy presents to obtain its identity, the in-memory identity directory, and the xtables lock directory.
pub fn volumes() -> [Value; 3] {
    [
        json!({
            "name": TOKEN_VOLUME,
            "projected": {
                "sources": [{
                    "serviceAccountToken": {
                        "audience": TOKEN_AUDIENCE,
                        "expirationSeconds": 86400,
                        "path": "token",
                    }
                }]
            }
        }),
        json!({ "name": IDENTITY_VOLUME, "emptyDir": { "medium": "Memory" } }),
        json!({ "name": XTABLES_VOLUME, "emptyDir": {} }),
    ]
}

/// The app's inbound TCP ports, sorted and deduplicated, excluding ports that bypass the proxy.
pub fn inbound_ports<'a>(
    declared: impl Iterator<Item = (i64, bool)> + 'a,
    skip: &PortList,
) -> Vec<u16> {
    let mut ports: Vec<u16> = declared
        .filter(|(_, tcp)| *tcp)
        .filter_map(|(p, _)| u16::try_from(p).ok())
        .filter(|p| *p != 0 && !skip.contains(*p))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}
