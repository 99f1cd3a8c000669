//! The objects injection adds: the `weft-init` init container, the `weft-proxy` container and the
//! `weft-identity-token` volume.
//!
//! `weft-init` runs the proxy-init program with these arguments:
//!
//! ```text
//! --incoming-proxy-port 4143          redirect inbound TCP to the proxy's inbound listener
//! --outgoing-proxy-port 4140          redirect outbound TCP to the proxy's outbound listener
//! --proxy-uid <uid>                   exempt the proxy's own traffic (default uid 2102)
//! --inbound-ports-to-ignore 4191[,<skip-inbound-ports>]   the admin port and skipped ports bypass the proxy
//! --outbound-ports-to-ignore <skip-outbound-ports>        only when the list is not empty
//! ```
//!
//! The proxy reads its settings from `WEFT_PROXY_*` environment variables (see [`proxy_container`]).

use crate::{config::ProxyConfig, values::PortList};
use serde_json::{json, Value};

pub const INIT_NAME: &str = "weft-init";
pub const PROXY_NAME: &str = "weft-proxy";
pub const TOKEN_VOLUME: &str = "weft-identity-token";
pub const TOKEN_AUDIENCE: &str = "identity.weft.dev";
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/weft.dev/identity";

pub const INBOUND_PORT: u16 = 4143;
pub const OUTBOUND_PORT: u16 = 4140;
pub const ADMIN_PORT: u16 = 4191;
/// Ports an app container must not declare.
pub const PROXY_PORTS: [u16; 3] = [OUTBOUND_PORT, INBOUND_PORT, ADMIN_PORT];
/// Names of the proxy's container ports.
pub const PROXY_PORT_NAMES: [&str; 2] = ["weft-proxy", "weft-admin"];

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

/// The iptables init container. It runs as root with only NET_ADMIN and NET_RAW, so it also works in pods whose
/// pod-level securityContext says `runAsNonRoot: true` (the container-level settings take precedence).
pub fn init_container(config: &ProxyConfig) -> Value {
    let mut ignore_inbound = ADMIN_PORT.to_string();
    if !config.skip_inbound_ports.is_empty() {
        ignore_inbound.push(',');
        ignore_inbound.push_str(&config.skip_inbound_ports.to_string());
    }
    let mut args = vec![
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
    json!({
        "name": INIT_NAME,
        "image": config.proxy_init_image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "resources": resources(config),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": { "add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"] },
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": false,
            "runAsUser": 0,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
}

fn field_env(name: &str, path: &str) -> Value {
    json!({ "name": name, "valueFrom": { "fieldRef": { "fieldPath": path } } })
}

fn value_env(name: &str, value: String) -> Value {
    json!({ "name": name, "value": value })
}

/// The proxy container. `inbound_ports` are the app's TCP container ports, which the proxy serves.
pub fn proxy_container(config: &ProxyConfig, inbound_ports: &[u16], native_sidecar: bool) -> Value {
    proxy_container_with(config, inbound_list(inbound_ports), native_sidecar)
}

/// The value of `WEFT_PROXY_INBOUND_PORTS`: the ports, comma-separated.
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

/// The proxy container with `inbound` as the value of `WEFT_PROXY_INBOUND_PORTS` (see [`inbound_list`]).
pub(crate) fn proxy_container_with(
    config: &ProxyConfig,
    inbound: String,
    native_sidecar: bool,
) -> Value {
    let env = vec![
        field_env("WEFT_PROXY_POD_NAME", "metadata.name"),
        field_env("WEFT_PROXY_POD_NAMESPACE", "metadata.namespace"),
        field_env("WEFT_PROXY_POD_IP", "status.podIP"),
        field_env("WEFT_PROXY_SERVICE_ACCOUNT", "spec.serviceAccountName"),
        value_env("WEFT_PROXY_POLICY_ADDR", config.policy_addr.clone()),
        value_env("WEFT_PROXY_INBOUND_PORTS", inbound),
        value_env("WEFT_PROXY_OPAQUE_PORTS", config.opaque_ports.to_string()),
        value_env("WEFT_PROXY_LOG_LEVEL", config.log_level.clone()),
        value_env(
            "WEFT_PROXY_INBOUND_LISTEN_ADDR",
            format!("0.0.0.0:{INBOUND_PORT}"),
        ),
        value_env(
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            format!("127.0.0.1:{OUTBOUND_PORT}"),
        ),
        value_env(
            "WEFT_PROXY_ADMIN_LISTEN_ADDR",
            format!("0.0.0.0:{ADMIN_PORT}"),
        ),
        value_env(
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            format!("{TOKEN_MOUNT_PATH}/token"),
        ),
    ];
    let mut container = json!({
        "name": PROXY_NAME,
        "image": format!("{}:{}", config.proxy_image, config.proxy_version),
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            { "name": PROXY_PORT_NAMES[0], "containerPort": INBOUND_PORT, "protocol": "TCP" },
            { "name": PROXY_PORT_NAMES[1], "containerPort": ADMIN_PORT, "protocol": "TCP" },
        ],
        "env": env,
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
        },
        "volumeMounts": [
            { "name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true },
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
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

/// The projected service-account token the proxy presents to obtain its identity.
pub fn token_volume() -> Value {
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
    })
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
