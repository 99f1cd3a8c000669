//! Proxy configuration: the command-line flags shared by `weft-controller` and `weft inject`, and the validated
//! [`ProxyConfig`] they are parsed into once at start-up.

use crate::values::{self, InvalidValue, PortList, Quantity};

/// The proxy version this build injects by default: `v` followed by the crate version.
pub const DEFAULT_PROXY_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// The value of `weft.dev/created-by` written on injected pods.
pub const CREATED_BY: &str = concat!("weft-controller v", env!("CARGO_PKG_VERSION"));

/// Proxy configuration flags. Every flag has a default, so none is required.
#[derive(Clone, Debug, clap::Args)]
pub struct ProxyArgs {
    /// Proxy image repository, without tag (the tag is --proxy-version)
    #[arg(long, default_value = "ghcr.io/weft-dev/proxy")]
    pub proxy_image: String,

    /// Proxy image tag
    #[arg(long, default_value = DEFAULT_PROXY_VERSION)]
    pub proxy_version: String,

    /// Full image reference of the proxy-init program run as the `weft-init` init container
    #[arg(long, default_value = concat!("ghcr.io/weft-dev/proxy-init:v", env!("CARGO_PKG_VERSION")))]
    pub proxy_init_image: String,

    /// Proxy log filter, e.g. `warn,weft=info`
    #[arg(long, default_value = "warn,weft=info")]
    pub proxy_log_level: String,

    /// CPU request of the proxy container (a Kubernetes quantity; empty for none)
    #[arg(long, default_value = "100m")]
    pub proxy_cpu_request: String,

    /// CPU limit of the proxy container (a Kubernetes quantity; none by default)
    #[arg(long)]
    pub proxy_cpu_limit: Option<String>,

    /// Memory request of the proxy container (a Kubernetes quantity; empty for none)
    #[arg(long, default_value = "20Mi")]
    pub proxy_memory_request: String,

    /// Memory limit of the proxy container (a Kubernetes quantity; empty for none)
    #[arg(long, default_value = "250Mi")]
    pub proxy_memory_limit: String,

    /// Linux uid the proxy runs as; iptables exempts this uid from redirection (1-2147483647)
    #[arg(long, default_value = "2102")]
    pub proxy_uid: String,

    /// Inbound ports that bypass the proxy, e.g. `25,8000-8010`
    #[arg(long, default_value = "")]
    pub skip_inbound_ports: String,

    /// Outbound ports that bypass the proxy, e.g. `3306,6379`
    #[arg(long, default_value = "")]
    pub skip_outbound_ports: String,

    /// Ports whose traffic the proxy forwards as opaque TCP (no protocol detection)
    #[arg(long, default_value = "25,587,3306,4444,5432,6379,9300,11211")]
    pub opaque_ports: String,

    /// Inject the proxy as a native sidecar (an init container with restartPolicy Always)
    #[arg(long)]
    pub native_sidecar: bool,

    /// Address (host:port) the proxy uses to reach the Weft policy API
    #[arg(long, default_value = "weft-policy.weft.svc.cluster.local:8090")]
    pub proxy_policy_addr: String,

    /// Namespace of the Weft control plane; its pods are never injected
    #[arg(long, default_value = "weft")]
    pub control_plane_namespace: String,
}

/// A flag value that failed validation; the message names the flag and the accepted form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {invalid}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub invalid: InvalidValue,
}

/// CPU and memory requests and limits of the proxy (and of `weft-init`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<Quantity>,
    pub cpu_limit: Option<Quantity>,
    pub memory_request: Option<Quantity>,
    pub memory_limit: Option<Quantity>,
}

/// Validated proxy configuration. Per-pod overrides start from this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub proxy_image: String,
    pub proxy_version: String,
    pub proxy_init_image: String,
    pub log_level: String,
    pub resources: Resources,
    pub proxy_uid: u32,
    pub skip_inbound_ports: PortList,
    pub skip_outbound_ports: PortList,
    pub opaque_ports: PortList,
    pub native_sidecar: bool,
    pub policy_addr: String,
    pub control_plane_namespace: String,
}

impl ProxyArgs {
    /// Validates every flag. The error names the first invalid flag.
    pub fn to_config(&self) -> Result<ProxyConfig, ConfigError> {
        fn flag<T>(flag: &'static str, r: Result<T, InvalidValue>) -> Result<T, ConfigError> {
            r.map_err(|invalid| ConfigError { flag, invalid })
        }
        fn optional_quantity(
            name: &'static str,
            value: Option<&str>,
        ) -> Result<Option<Quantity>, ConfigError> {
            match value {
                None | Some("") => Ok(None),
                Some(v) => flag(name, values::parse_quantity(v)).map(Some),
            }
        }
        let resources = Resources {
            cpu_request: optional_quantity("proxy-cpu-request", Some(&self.proxy_cpu_request))?,
            cpu_limit: optional_quantity("proxy-cpu-limit", self.proxy_cpu_limit.as_deref())?,
            memory_request: optional_quantity(
                "proxy-memory-request",
                Some(&self.proxy_memory_request),
            )?,
            memory_limit: optional_quantity("proxy-memory-limit", Some(&self.proxy_memory_limit))?,
        };
        if let Some(problem) = request_above_limit(&resources) {
            return Err(ConfigError {
                flag: problem.request_flag,
                invalid: InvalidValue {
                    value: problem.request.to_string(),
                    problem: format!(
                        "is above --{} {:?}",
                        problem.limit_flag,
                        problem.limit.as_str()
                    ),
                },
            });
        }
        Ok(ProxyConfig {
            proxy_image: flag("proxy-image", values::parse_image(&self.proxy_image))?,
            proxy_version: flag("proxy-version", values::parse_tag(&self.proxy_version))?,
            proxy_init_image: flag(
                "proxy-init-image",
                values::parse_image_reference(&self.proxy_init_image),
            )?,
            log_level: flag(
                "proxy-log-level",
                values::parse_log_level(&self.proxy_log_level),
            )?,
            resources,
            proxy_uid: flag("proxy-uid", values::parse_uid(&self.proxy_uid))?,
            skip_inbound_ports: flag(
                "skip-inbound-ports",
                values::parse_port_list(&self.skip_inbound_ports),
            )?,
            skip_outbound_ports: flag(
                "skip-outbound-ports",
                values::parse_port_list(&self.skip_outbound_ports),
            )?,
            opaque_ports: flag("opaque-ports", values::parse_port_list(&self.opaque_ports))?,
            native_sidecar: self.native_sidecar,
            policy_addr: flag(
                "proxy-policy-addr",
                values::parse_host_port(&self.proxy_policy_addr),
            )?,
            control_plane_namespace: flag(
                "control-plane-namespace",
                values::parse_namespace(&self.control_plane_namespace),
            )?,
        })
    }
}

/// A resource request that exceeds its limit (the API server would refuse such a pod).
#[derive(Debug)]
pub(crate) struct LimitProblem<'a> {
    pub request_flag: &'static str,
    pub limit_flag: &'static str,
    pub request: &'a Quantity,
    pub limit: &'a Quantity,
}

pub(crate) fn request_above_limit(r: &Resources) -> Option<LimitProblem<'_>> {
    let pairs = [
        (
            "proxy-cpu-request",
            "proxy-cpu-limit",
            &r.cpu_request,
            &r.cpu_limit,
        ),
        (
            "proxy-memory-request",
            "proxy-memory-limit",
            &r.memory_request,
            &r.memory_limit,
        ),
    ];
    pairs
        .into_iter()
        .find_map(|(request_flag, limit_flag, request, limit)| {
            let (request, limit) = (request.as_ref()?, limit.as_ref()?);
            (values::quantity_value(request) > values::quantity_value(limit)).then_some(
                LimitProblem {
                    request_flag,
                    limit_flag,
                    request,
                    limit,
                },
            )
        })
}

impl Default for ProxyArgs {
    /// The flag defaults, as clap would produce them with no flags given.
    fn default() -> Self {
        <DefaultArgs as clap::Parser>::parse_from(["weft"]).args
    }
}

#[derive(clap::Parser)]
struct DefaultArgs {
    #[command(flatten)]
    args: ProxyArgs,
}

impl Default for ProxyConfig {
    /// The same values as the flag defaults.
    fn default() -> Self {
        ProxyArgs::default()
            .to_config()
            .expect("the flag defaults are valid (checked by the config tests)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn parse(flags: &[&str]) -> Result<ProxyConfig, ConfigError> {
        let mut argv = vec!["weft"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().args.to_config()
    }

    #[test]
    fn defaults_are_valid_and_match_the_documented_values() {
        let config = parse(&[]).unwrap();
        assert_eq!(config, ProxyConfig::default());
        assert_eq!(config.proxy_image, "ghcr.io/weft-dev/proxy");
        assert_eq!(config.proxy_version, DEFAULT_PROXY_VERSION);
        assert!(DEFAULT_PROXY_VERSION.starts_with('v'));
        assert_eq!(config.proxy_uid, 2102);
        assert_eq!(
            config.resources.cpu_request.as_ref().unwrap().as_str(),
            "100m"
        );
        assert_eq!(config.resources.cpu_limit, None);
        assert_eq!(
            config.resources.memory_limit.as_ref().unwrap().as_str(),
            "250Mi"
        );
        assert_eq!(
            config.opaque_ports.to_string(),
            "25,587,3306,4444,5432,6379,9300,11211"
        );
        assert!(config.skip_inbound_ports.is_empty());
        assert!(!config.native_sidecar);
        assert_eq!(config.control_plane_namespace, "weft");
    }

    #[test]
    fn flags_are_validated_and_errors_name_the_flag() {
        let err = parse(&["--proxy-cpu-request", "lots"]).unwrap_err();
        assert_eq!(err.flag, "proxy-cpu-request");
        assert!(err
            .to_string()
            .starts_with("--proxy-cpu-request: \"lots\" is not a Kubernetes quantity"));
        assert_eq!(parse(&["--proxy-uid", "0"]).unwrap_err().flag, "proxy-uid");
        assert_eq!(
            parse(&["--opaque-ports", "1-0"]).unwrap_err().flag,
            "opaque-ports"
        );
        assert_eq!(
            parse(&["--proxy-policy-addr", "x"]).unwrap_err().flag,
            "proxy-policy-addr"
        );
        assert_eq!(
            parse(&["--proxy-image", "a/b:c"]).unwrap_err().flag,
            "proxy-image"
        );
        let err = parse(&["--proxy-memory-request", "1Gi"]).unwrap_err();
        assert_eq!(err.flag, "proxy-memory-request");
        assert!(err.to_string().contains("--proxy-memory-limit"), "{err}");
        let config = parse(&[
            "--native-sidecar",
            "--proxy-memory-limit",
            "",
            "--proxy-cpu-limit",
            "1",
        ])
        .unwrap();
        assert!(config.native_sidecar);
        assert_eq!(config.resources.memory_limit, None);
        assert_eq!(config.resources.cpu_limit.unwrap().as_str(), "1");
    }
}
