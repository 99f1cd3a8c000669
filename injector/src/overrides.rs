//! Per-pod configuration: `config.weft.dev/` annotations on the pod override those on its namespace, which
//! override the controller's flags. Each is also read under Linkerd's spelling (`config.linkerd.io/`, see
//! [`weft_core::linkerd`]); Weft's wins, and differing values are reported in the warnings. An invalid pod-level value rejects the pod; an invalid namespace-level value
//! is ignored with a warning, so one bad namespace annotation cannot block every pod in it.

use crate::{
    config::{request_above_limit, ProxyConfig},
    pod_view::PodView,
    rejection::{RejectReason, Rejection},
    tuning::{self, ENV_SETTINGS},
    values::{self, InvalidValue},
};
use std::collections::BTreeMap;
use weft_core::linkerd;

/// Prefix of every override annotation.
pub use weft_core::names::CONFIG_PREFIX as OVERRIDE_PREFIX;

type Apply = fn(&mut ProxyConfig, &str) -> Result<(), InvalidValue>;

/// Every override: the annotation key and how its value is applied to the configuration.
const OVERRIDES: &[(&str, Apply)] = &[
    ("config.weft.dev/proxy-image", |c, v| {
        c.proxy_image = values::parse_image(v)?;
        Ok(())
    }),
    ("config.weft.dev/proxy-version", |c, v| {
        c.proxy_version = values::parse_tag(v)?;
        Ok(())
    }),
    ("config.weft.dev/proxy-log-level", |c, v| {
        c.log_level = values::parse_log_level(v)?;
        Ok(())
    }),
    ("config.weft.dev/proxy-cpu-request", |c, v| {
        c.resources.cpu_request = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-cpu-limit", |c, v| {
        c.resources.cpu_limit = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-memory-request", |c, v| {
        c.resources.memory_request = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-memory-limit", |c, v| {
        c.resources.memory_limit = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-uid", |c, v| {
        c.proxy_uid = values::parse_uid(v)?;
        Ok(())
    }),
    ("config.weft.dev/skip-inbound-ports", |c, v| {
        c.skip_inbound_ports = values::parse_port_list(v)?;
        Ok(())
    }),
    ("config.weft.dev/skip-outbound-ports", |c, v| {
        c.skip_outbound_ports = values::parse_port_list(v)?;
        Ok(())
    }),
    ("config.weft.dev/opaque-ports", |c, v| {
        c.opaque_ports = values::parse_port_list(v)?;
        Ok(())
    }),
    ("config.weft.dev/proxy-log-format", |c, v| {
        c.log_format = values::parse_log_format(v)?;
        Ok(())
    }),
    ("config.weft.dev/image-pull-policy", |c, v| {
        c.tuning.image_pull_policy = Some(tuning::parse_pull_policy(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-gid", |c, v| {
        c.tuning.gid = Some(tuning::parse_gid(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-ephemeral-storage-request", |c, v| {
        c.tuning.ephemeral_storage_request = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/proxy-ephemeral-storage-limit", |c, v| {
        c.tuning.ephemeral_storage_limit = Some(values::parse_quantity(v)?);
        Ok(())
    }),
    ("config.weft.dev/skip-subnets", |c, v| {
        c.tuning.skip_subnets = values::parse_networks(v)?;
        Ok(())
    }),
    ("config.weft.dev/proxy-log-http-headers", |c, v| {
        c.tuning.log_http_headers = tuning::parse_log_http_headers(v)?;
        Ok(())
    }),
    // Merged: a pod's variables add to (and replace by name) its namespace's.
    ("config.weft.dev/proxy-additional-env", |c, v| {
        c.tuning
            .additional_env
            .extend(tuning::parse_additional_env(v)?);
        Ok(())
    }),
    // Read by the policy index; validated here so a bad value is refused at admission.
    (
        "config.weft.dev/proxy-require-identity-inbound-ports",
        |c, v| {
            c.tuning.require_identity_ports = values::parse_port_list(v)?;
            Ok(())
        },
    ),
    ("config.weft.dev/native-sidecar", |c, v| {
        c.native_sidecar = values::parse_bool(v)?;
        Ok(())
    }),
    // Also read by the policy index, which answers the proxy's policy lookups with the same default.
    ("config.weft.dev/default-inbound-policy", |c, v| {
        c.default_inbound_policy = values::parse_inbound_policy(v)?;
        Ok(())
    }),
];

/// The keys of every supported override annotation.
pub fn override_keys() -> impl Iterator<Item = &'static str> {
    OVERRIDES
        .iter()
        .map(|(key, _)| *key)
        .chain(ENV_SETTINGS.iter().map(|(key, _, _)| *key))
}

/// A warning for each of Linkerd's annotations that Weft ignores, present per `has`.
fn unsupported(on: &str, has: impl Fn(&str) -> bool) -> Vec<String> {
    linkerd::UNSUPPORTED
        .iter()
        .filter(|(key, _)| has(key))
        .map(|(key, why)| format!("{on}: {key} is not supported by Weft and is ignored: {why}"))
        .collect()
}

/// Applies the annotation `key` with `value` to `config`: an override or a proxy variable.
fn apply(config: &mut ProxyConfig, key: &str, value: &str) -> Result<(), InvalidValue> {
    if let Some((_, apply)) = OVERRIDES.iter().find(|(k, _)| *k == key) {
        return apply(config, value);
    }
    let (_, variable, parse) = ENV_SETTINGS
        .iter()
        .find(|(k, _, _)| *k == key)
        .expect("only keys of override_keys() are applied");
    match parse(value)? {
        Some(value) => config.tuning.env.insert(variable, value),
        None => config.tuning.env.remove(variable),
    };
    Ok(())
}

/// Applies namespace then pod overrides to a copy of the flag configuration.
/// Returns the effective configuration and warnings about ignored namespace-level values.
pub(crate) fn effective_config(
    base: &ProxyConfig,
    namespace: &str,
    namespace_annotations: Option<&BTreeMap<String, String>>,
    pod: &PodView<'_>,
) -> Result<(ProxyConfig, Vec<String>), Rejection> {
    let mut config = base.clone();
    let mut warnings = Vec::new();
    if let Some(ns) = namespace_annotations {
        let on = format!("namespace {namespace}");
        warnings.extend(unsupported(&on, |key| ns.contains_key(key)));
        for key in override_keys() {
            if let Some(found) = linkerd::lookup(ns, key) {
                warnings.extend(found.conflict_warnings(&on));
                if let Err(invalid) = apply(&mut config, key, found.value) {
                    warnings.push(format!(
                        "{on}: ignored {}: {invalid}; the controller's setting is used",
                        found.key
                    ));
                }
            }
        }
        if let Some(problem) = request_above_limit(&config.resources) {
            warnings.push(format!(
                "namespace {namespace}: ignored {OVERRIDE_PREFIX}{}/{}: request {:?} is above limit {:?}",
                problem.request_flag,
                problem.limit_flag,
                problem.request.as_str(),
                problem.limit.as_str()
            ));
            config.resources = base.resources.clone();
        }
        if let Some(problem) = policy_without_networks(&config) {
            warnings.push(format!(
                "namespace {namespace}: ignored {problem}; the controller's setting is used"
            ));
            config.default_inbound_policy = base.default_inbound_policy;
        }
    }
    warnings.extend(unsupported("pod", |key| {
        pod.annotation(key).is_ok_and(|v| v.is_some())
    }));
    for key in override_keys() {
        let found = pod
            .setting(key)
            .map_err(|e| Rejection::not_a_string(e.key))?;
        if let Some(found) = found {
            warnings.extend(found.conflict_warnings("pod"));
            apply(&mut config, key, found.value).map_err(|invalid| Rejection {
                reason: RejectReason::InvalidAnnotation,
                message: format!("{}: {invalid}", found.key),
            })?;
        }
    }
    if let Some(problem) = request_above_limit(&config.resources) {
        return Err(Rejection {
            reason: RejectReason::InvalidAnnotation,
            message: format!(
                "{OVERRIDE_PREFIX}{}: {:?} is above the proxy's limit {:?} ({OVERRIDE_PREFIX}{}); a request must not exceed its limit",
                problem.request_flag,
                problem.request.as_str(),
                problem.limit.as_str(),
                problem.limit_flag,
            ),
        });
    }
    if let Some(problem) = policy_without_networks(&config) {
        return Err(Rejection {
            reason: RejectReason::InvalidAnnotation,
            message: problem,
        });
    }
    Ok((config, warnings))
}

/// A `cluster-*` default policy with no cluster networks, which the proxy refuses at start-up.
fn policy_without_networks(config: &ProxyConfig) -> Option<String> {
    let policy = config.default_inbound_policy;
    (policy.needs_cluster_networks() && config.cluster.cluster_networks.is_empty()).then(|| {
        format!(
            "{OVERRIDE_PREFIX}default-inbound-policy: {policy:?} needs cluster networks, and the controller has none (--cluster-networks)",
            policy = policy.as_str()
        )
    })
}
