//! Proxy settings that only annotations set, on a pod or its namespace: the rest of Linkerd's
//! `config.linkerd.io/*` settings, each under Weft's spelling `config.weft.dev/<same name>` too
//! (see [`weft_core::linkerd`]). Without an annotation the proxy's own default applies.
//!
//! What each one does to the injected containers, as Linkerd edge-26.8.3's injector does it and
//! as linkerd2-proxy v2.366.0 and linkerd2-proxy-init v2.4.9 read it:
//!
//! | setting | effect |
//! |---|---|
//! | `image-pull-policy` | `imagePullPolicy` of `weft-init` and `weft-proxy` |
//! | `proxy-gid` | `runAsGroup` of `weft-proxy`, and `--proxy-gid` of proxy-init (its traffic bypasses the redirect) |
//! | `proxy-ephemeral-storage-{request,limit}` | `resources` of `weft-proxy` |
//! | `skip-subnets` | `--subnets-to-ignore` of proxy-init: inbound connections *from* these networks bypass the proxy |
//! | `proxy-{inbound,outbound}-connect-timeout` | `LINKERD2_PROXY_{IN,OUT}BOUND_CONNECT_TIMEOUT` (milliseconds) |
//! | `proxy-{inbound,outbound}-discovery-cache-unused-timeout` | `LINKERD2_PROXY_{IN,OUT}BOUND_DISCOVERY_IDLE_TIMEOUT` (seconds) |
//! | `proxy-disable-{inbound,outbound}-protocol-detect-timeout` | `true`: `LINKERD2_PROXY_{IN,OUT}BOUND_DETECT_TIMEOUT=365d` |
//! | `access-log` | `LINKERD2_PROXY_ACCESS_LOG` (`apache` or `json`) |
//! | `shutdown-grace-period` | `LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD` (milliseconds) |
//! | `proxy-admin-shutdown` | `enabled`: `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=true` |
//! | `proxy-metrics-hostname-labels` | `LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS` |
//! | `proxy-log-http-headers` | `off` (the default, as in Linkerd): `LINKERD2_PROXY_LOG` gets `,[{headers}]=off,[{request}]=off`; `insecure`: it does not |
//! | `proxy-additional-env` | these `EnvVar`s in the proxy's environment (replacing one of the same name); a pod's list adds to its namespace's |
//! | `proxy-require-identity-inbound-ports` | nothing in the pod: the policy index makes those ports' default policy authenticated (the proxy no longer reads Linkerd's variable for it) |
//!
//! Durations are written as Linkerd's are (Go's form: `500ms`, `1.5s`, `2m30s`, `1h`).

use crate::values::{self, InvalidValue, PortList, Quantity};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

/// The settings; `None` or empty: not set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyTuning {
    pub image_pull_policy: Option<String>,
    pub gid: Option<u32>,
    pub ephemeral_storage_request: Option<Quantity>,
    pub ephemeral_storage_limit: Option<Quantity>,
    pub skip_subnets: Vec<ipnet::IpNet>,
    /// Proxy variables set by annotations, by name.
    pub env: BTreeMap<&'static str, String>,
    /// Validated here; read by the policy index.
    pub require_identity_ports: PortList,
    /// `proxy-log-http-headers`: `false` (Linkerd's `off`, the default) keeps HTTP headers and
    /// requests out of the proxy's logs at any level; `true` (`insecure`) lets them in.
    pub log_http_headers: bool,
    /// `proxy-additional-env`: variables added to the proxy's environment, by name; a later
    /// layer (the pod over its namespace) replaces a variable of the same name.
    pub additional_env: BTreeMap<String, Value>,
}

/// What `proxy-log-http-headers: off` adds to the proxy's log filter (as Linkerd's chart does):
/// no span carrying headers or a request is logged.
pub const NO_HTTP_HEADERS_LOG: &str = ",[{headers}]=off,[{request}]=off";

pub fn parse_log_http_headers(value: &str) -> Result<bool, InvalidValue> {
    match value {
        "off" => Ok(false),
        "insecure" => Ok(true),
        _ => Err(InvalidValue::new(
            value,
            "is not valid (accepted: \"off\", \"insecure\")",
        )),
    }
}

/// Parses `proxy-additional-env`: a JSON list of Kubernetes `EnvVar` objects, each with a `name`
/// (letters, digits, `_`, `-`, `.`, not starting with a digit) and a string `value` or a
/// `valueFrom` object.
pub fn parse_additional_env(value: &str) -> Result<Vec<(String, Value)>, InvalidValue> {
    const FORM: &str = "(accepted: a JSON list of EnvVar objects, e.g. '[{\"name\":\"LINKERD2_PROXY_X\",\"value\":\"1\"}]')";
    let list: Vec<Value> = serde_json::from_str(value)
        .map_err(|e| InvalidValue::new(value, format!("is not a JSON list: {e} {FORM}")))?;
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item["name"].as_str().unwrap_or_default().to_string();
            let valid_name = name
                .chars()
                .next()
                .is_some_and(|c| !c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            let fields_ok = item.as_object().is_some_and(|o| {
                o.keys().all(|k| matches!(k.as_str(), "name" | "value" | "valueFrom"))
                    && (o.get("value").is_some_and(Value::is_string)
                        ^ o.get("valueFrom").is_some_and(Value::is_object))
            });
            if valid_name && fields_ok {
                Ok((name, item))
            } else {
                Err(InvalidValue::new(
                    value,
                    format!("has an invalid item [{i}] (each needs a valid `name` and a string `value` or a `valueFrom` object) {FORM}"),
                ))
            }
        })
        .collect()
}

/// The annotation settings that set one proxy variable: `(Weft's annotation, variable, value
/// parser)`; a parser returning `None` removes the variable.
pub(crate) type EnvSetting = (
    &'static str,
    &'static str,
    fn(&str) -> Result<Option<String>, InvalidValue>,
);

pub(crate) const ENV_SETTINGS: &[EnvSetting] = &[
    (
        "config.weft.dev/proxy-inbound-connect-timeout",
        "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
        |v| millis(v).map(Some),
    ),
    (
        "config.weft.dev/proxy-outbound-connect-timeout",
        "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
        |v| millis(v).map(Some),
    ),
    (
        "config.weft.dev/proxy-inbound-discovery-cache-unused-timeout",
        "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT",
        |v| seconds(v).map(Some),
    ),
    (
        "config.weft.dev/proxy-outbound-discovery-cache-unused-timeout",
        "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
        |v| seconds(v).map(Some),
    ),
    (
        "config.weft.dev/proxy-disable-inbound-protocol-detect-timeout",
        "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT",
        |v| Ok(values::parse_bool(v)?.then(|| "365d".to_string())),
    ),
    (
        "config.weft.dev/proxy-disable-outbound-protocol-detect-timeout",
        "LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT",
        |v| Ok(values::parse_bool(v)?.then(|| "365d".to_string())),
    ),
    (
        "config.weft.dev/access-log",
        "LINKERD2_PROXY_ACCESS_LOG",
        |v| match v {
            "apache" | "json" => Ok(Some(v.to_string())),
            _ => Err(InvalidValue::new(
                v,
                "is not an access log format (accepted: \"apache\", \"json\")",
            )),
        },
    ),
    (
        "config.weft.dev/shutdown-grace-period",
        "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD",
        |v| millis(v).map(Some),
    ),
    (
        "config.weft.dev/proxy-admin-shutdown",
        "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
        |v| match v {
            "enabled" => Ok(Some("true".to_string())),
            "disabled" => Ok(None),
            _ => Err(InvalidValue::new(
                v,
                "is not valid (accepted: \"enabled\", \"disabled\")",
            )),
        },
    ),
    (
        "config.weft.dev/proxy-metrics-hostname-labels",
        "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS",
        |v| values::parse_bool(v).map(|b| Some(b.to_string())),
    ),
];

/// Parses a duration as Linkerd's annotations write it (Go's `time.ParseDuration`): one or more
/// decimal numbers with a unit each (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `300ms`, `1.5s`,
/// `2m30s`; `0` alone is zero. Negative durations are refused.
pub fn parse_duration(value: &str) -> Result<Duration, InvalidValue> {
    const FORM: &str =
        "is not a duration (accepted: numbers with a unit ns, us, ms, s, m or h, e.g. \"500ms\", \"1.5s\", \"2m30s\")";
    let invalid = || InvalidValue::new(value, FORM);
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = value;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1e0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total as u64))
}

/// A duration as the proxy's variables take it, in whole milliseconds (as Linkerd writes them).
fn millis(value: &str) -> Result<String, InvalidValue> {
    Ok(format!("{}ms", parse_duration(value)?.as_millis()))
}

/// A duration in whole seconds (as Linkerd writes the discovery idle timeouts).
fn seconds(value: &str) -> Result<String, InvalidValue> {
    Ok(format!("{}s", parse_duration(value)?.as_secs()))
}

pub fn parse_pull_policy(value: &str) -> Result<String, InvalidValue> {
    match value {
        "Always" | "IfNotPresent" | "Never" => Ok(value.to_string()),
        _ => Err(InvalidValue::new(
            value,
            "is not an image pull policy (accepted: \"Always\", \"IfNotPresent\", \"Never\")",
        )),
    }
}

pub fn parse_gid(value: &str) -> Result<u32, InvalidValue> {
    value
        .parse::<u32>()
        .ok()
        .filter(|gid| i32::try_from(*gid).is_ok())
        .ok_or_else(|| InvalidValue::new(value, "is not a group id (accepted: 0-2147483647)"))
}

impl ProxyTuning {
    /// The variables to add to the proxy's environment, by name.
    pub(crate) fn env(&self) -> impl Iterator<Item = Value> + '_ {
        self.env
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
    }

    /// Applies `proxy-additional-env` to the proxy's environment `env`: a variable already there
    /// is replaced in place (so the proxy sees one value per name), the others are appended.
    pub(crate) fn add_additional_env(&self, env: &mut Vec<Value>) {
        for (name, var) in &self.additional_env {
            match env.iter_mut().find(|e| e["name"] == name.as_str()) {
                Some(existing) => *existing = var.clone(),
                None => env.push(var.clone()),
            }
        }
    }

    /// proxy-init's arguments for these settings.
    pub(crate) fn init_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(gid) = self.gid {
            args.extend(["--proxy-gid".to_string(), gid.to_string()]);
        }
        if !self.skip_subnets.is_empty() {
            let subnets: Vec<String> = self.skip_subnets.iter().map(ToString::to_string).collect();
            args.extend(["--subnets-to-ignore".to_string(), subnets.join(",")]);
        }
        args
    }

    /// Sets the ephemeral-storage request and limit in the `resources` of a container.
    pub(crate) fn add_resources(&self, resources: &mut Value) {
        for (field, quantity) in [
            ("requests", &self.ephemeral_storage_request),
            ("limits", &self.ephemeral_storage_limit),
        ] {
            if let (Some(q), Some(obj)) = (quantity, resources.as_object_mut()) {
                let entry = obj.entry(field).or_insert_with(|| json!({}));
                entry["ephemeral-storage"] = q.as_str().into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        for (value, millis) in [
            ("0", 0),
            ("300ms", 300),
            ("1s", 1_000),
            ("1.5s", 1_500),
            ("2m30s", 150_000),
            ("1h", 3_600_000),
            ("250000us", 250),
            ("1500000000ns", 1_500),
        ] {
            assert_eq!(
                parse_duration(value).unwrap().as_millis(),
                millis,
                "{value}"
            );
        }
        for value in ["", "1", "-1s", "1d", "s", "1.2.3s", "1 s", "ms5", "1e3s"] {
            let error = parse_duration(value).unwrap_err();
            assert!(
                error.problem.contains("is not a duration"),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn env_settings_render_as_linkerd_does() {
        let render = |setting: &str, value: &str| {
            let key = format!("config.weft.dev/{setting}");
            let (_, _, parse) = ENV_SETTINGS.iter().find(|(s, _, _)| *s == key).unwrap();
            parse(value)
        };
        assert_eq!(
            render("proxy-outbound-connect-timeout", "1.5s")
                .unwrap()
                .unwrap(),
            "1500ms"
        );
        assert_eq!(
            render("proxy-inbound-discovery-cache-unused-timeout", "90s")
                .unwrap()
                .unwrap(),
            "90s"
        );
        assert_eq!(
            render("proxy-disable-inbound-protocol-detect-timeout", "true")
                .unwrap()
                .unwrap(),
            "365d"
        );
        assert_eq!(
            render("proxy-disable-inbound-protocol-detect-timeout", "false").unwrap(),
            None
        );
        assert_eq!(
            render("proxy-admin-shutdown", "enabled").unwrap().unwrap(),
            "true"
        );
        assert_eq!(render("proxy-admin-shutdown", "disabled").unwrap(), None);
        assert!(render("access-log", "common").is_err());
        assert!(render("proxy-metrics-hostname-labels", "yes").is_err());
    }

    #[test]
    fn additional_env_and_http_header_logging() {
        let env = parse_additional_env(
            r#"[{"name":"LINKERD2_PROXY_X","value":"1"},{"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}]"#,
        )
        .unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env[1].0, "POD_IP");
        for bad in [
            "",
            "{}",
            r#"[{"value":"1"}]"#,
            r#"[{"name":"1X","value":"1"}]"#,
            r#"[{"name":"X","value":1}]"#,
            r#"[{"name":"X","value":"1","valueFrom":{}}]"#,
            r#"[{"name":"X","other":"1","value":"1"}]"#,
        ] {
            let error = parse_additional_env(bad).unwrap_err();
            assert!(error.problem.contains("EnvVar"), "{bad}: {error}");
        }
        let tuning = ProxyTuning {
            additional_env: env.into_iter().collect(),
            ..ProxyTuning::default()
        };
        let mut proxy_env = vec![
            json!({"name": "POD_IP", "value": "old"}),
            json!({"name": "A", "value": "a"}),
        ];
        tuning.add_additional_env(&mut proxy_env);
        assert_eq!(proxy_env.len(), 3, "{proxy_env:?}");
        assert_eq!(
            proxy_env[0]["valueFrom"]["fieldRef"]["fieldPath"],
            "status.podIP"
        );
        assert_eq!(proxy_env[2]["name"], "LINKERD2_PROXY_X");

        assert!(!parse_log_http_headers("off").unwrap());
        assert!(parse_log_http_headers("insecure").unwrap());
        assert!(parse_log_http_headers("on").is_err());
    }

    #[test]
    fn pull_policy_and_gid() {
        assert_eq!(parse_pull_policy("Always").unwrap(), "Always");
        assert!(parse_pull_policy("always").is_err());
        assert_eq!(parse_gid("0").unwrap(), 0);
        assert_eq!(parse_gid("2147483647").unwrap(), 2147483647);
        assert!(parse_gid("2147483648").is_err());
        assert!(parse_gid("-1").is_err());
    }
}
