//! Proxy configuration: the command-line flags shared by `weft-controller` and `weft inject`, and the validated
//! [`ProxyConfig`] they are parsed into once at start-up. [`ProxyArgs::load`] reads the one file a flag may
//! name (the trust anchors); [`ProxyArgs::to_config`] is pure.

use crate::values::{self, InvalidValue, PortList, Quantity, TrustAnchors};
use std::path::PathBuf;
use weft_core::{ClusterSettings, DefaultPolicy, Mesh, ServiceAccountRef};

/// The proxy version this build injects by default: the linkerd2-proxy image tag of the Linkerd release whose
/// proxy (v2.366.0) Weft's control plane speaks to.
pub const DEFAULT_PROXY_VERSION: &str = "edge-26.8.3";
/// The proxy image this build injects by default (Linkerd's image layout: the proxy-identity wrapper as
/// entrypoint, `/usr/lib/linkerd/linkerd2-proxy-init` beside it).
pub const DEFAULT_PROXY_IMAGE: &str = "cr.l5d.io/linkerd/proxy";
/// The value of `weft.dev/created-by` written on injected pods.
pub const CREATED_BY: &str = concat!("weft-controller v", env!("CARGO_PKG_VERSION"));
/// The port of the controller's gRPC server (identity, policy and destination APIs).
pub const DEFAULT_CONTROL_PORT: u16 = 8090;
/// The name of the controller's Service and ServiceAccount that the default addresses and server names assume.
pub const DEFAULT_CONTROLLER_NAME: &str = "weft-controller";
/// The cluster networks the controller and `weft inject` assume unless told otherwise (`--cluster-networks`).
pub const DEFAULT_CLUSTER_NETWORKS: &str =
    "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8";

/// Proxy configuration flags. Every flag has a default, so none is required; without
/// --identity-trust-anchors-file an injected proxy cannot start (see [`ProxyConfig::trust_anchors`]).
#[derive(Clone, Debug, clap::Args)]
pub struct ProxyArgs {
    /// Proxy image repository, without tag (the tag is --proxy-version)
    #[arg(long, default_value = DEFAULT_PROXY_IMAGE)]
    pub proxy_image: String,

    /// Proxy image tag
    #[arg(long, default_value = DEFAULT_PROXY_VERSION)]
    pub proxy_version: String,

    /// Full image reference for the `weft-init` container (default: the proxy image, which carries
    /// /usr/lib/linkerd/linkerd2-proxy-init)
    #[arg(long, value_name = "IMAGE")]
    pub proxy_init_image: Option<String>,

    /// Proxy log filter (LINKERD2_PROXY_LOG), e.g. `warn,linkerd=info`
    #[arg(long, default_value = "warn,linkerd=info,hickory=error")]
    pub proxy_log_level: String,

    /// Proxy log format: `plain` or `json`
    #[arg(long, default_value = "plain")]
    pub proxy_log_format: String,

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

    /// Inject the proxy as a native sidecar (an init container with restartPolicy Always, which
    /// Kubernetes starts, and waits for, before the app, and stops after it, so Jobs complete):
    /// `true`, `false`, or `auto` (`true` where the API server is Kubernetes 1.29 or later; the
    /// offline `weft inject` assumes it is). `--native-sidecar` alone means `true`
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub native_sidecar: NativeSidecar,

    /// Namespace of the Weft control plane; its pods are never injected
    #[arg(long, default_value = "weft")]
    pub control_plane_namespace: String,

    /// DNS domain of the cluster, for the default control-plane addresses
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Trust domain of mesh identities: a proxy is
    /// `<serviceaccount>.<namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>`
    #[arg(long, default_value = "cluster.local")]
    pub identity_trust_domain: String,

    /// Inbound policy of ports that no Server describes, unless a namespace or pod overrides it
    /// with `config.weft.dev/default-inbound-policy`: all-unauthenticated, all-authenticated,
    /// cluster-unauthenticated, cluster-authenticated or deny
    #[arg(long, default_value = "all-unauthenticated")]
    pub default_policy: String,

    /// The cluster's pod and node networks, comma-separated CIDRs: what the cluster-* policies
    /// admit, and the networks of an authorization that names none
    #[arg(long, default_value = DEFAULT_CLUSTER_NETWORKS)]
    pub cluster_networks: String,

    /// PEM file with the identity trust anchors (one or more CA certificates) the proxies trust; read once at
    /// start-up
    #[arg(long, value_name = "PATH")]
    pub identity_trust_anchors_file: Option<PathBuf>,

    /// Address (host:port) of the identity API the proxy obtains its certificate from (default:
    /// weft-controller.<control-plane-namespace>.svc.<cluster-domain>:8090)
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_identity_addr: Option<String>,

    /// Identity the identity API's server presents (default: the controller's,
    /// weft-controller.<control-plane-namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>)
    #[arg(long, value_name = "NAME")]
    pub proxy_identity_name: Option<String>,

    /// Address (host:port) of the policy API (default: as --proxy-identity-addr)
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_policy_addr: Option<String>,

    /// Identity of the policy API's server (default: as --proxy-identity-name)
    #[arg(long, value_name = "NAME")]
    pub proxy_policy_name: Option<String>,

    /// Address (host:port) of the destination API (default: as --proxy-identity-addr)
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_destination_addr: Option<String>,

    /// Identity of the destination API's server (default: as --proxy-identity-name)
    #[arg(long, value_name = "NAME")]
    pub proxy_destination_name: Option<String>,
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

/// One control-plane API the proxy dials: its address and the identity its server must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlaneApi {
    /// `host:port`.
    pub addr: String,
    /// The server's mesh identity (a DNS-like name), checked by the proxy over TLS.
    pub name: String,
}

/// Validated proxy configuration. Per-pod overrides start from this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub proxy_image: String,
    pub proxy_version: String,
    /// `None`: `weft-init` runs from the proxy image.
    pub proxy_init_image: Option<String>,
    pub log_level: String,
    pub log_format: String,
    pub resources: Resources,
    pub proxy_uid: u32,
    pub skip_inbound_ports: PortList,
    pub skip_outbound_ports: PortList,
    /// This proxy's opaque ports: the cluster's default, unless the pod or its namespace
    /// overrides them.
    pub opaque_ports: PortList,
    pub native_sidecar: bool,
    /// Settings only annotations set (Linkerd's other `config.linkerd.io/*` settings).
    pub tuning: crate::tuning::ProxyTuning,
    /// The cluster and the mesh (identities, DNS domain, networks, the defaults); never
    /// overridden per pod.
    pub cluster: ClusterSettings,
    /// `None` when no --identity-trust-anchors-file was given: pods are still injected (with a warning), but
    /// their proxy exits at start-up, as it requires trust anchors.
    pub trust_anchors: Option<TrustAnchors>,
    pub identity_api: ControlPlaneApi,
    pub policy_api: ControlPlaneApi,
    pub destination_api: ControlPlaneApi,
    /// This proxy's default inbound policy: the cluster's, unless the pod or its namespace
    /// overrides it with `config.weft.dev/default-inbound-policy`.
    pub default_inbound_policy: DefaultPolicy,
}

impl ProxyConfig {
    /// The image `weft-init` runs: the override, else the proxy image.
    pub fn init_image(&self) -> String {
        match &self.proxy_init_image {
            Some(image) => image.clone(),
            None => format!("{}:{}", self.proxy_image, self.proxy_version),
        }
    }

    /// The mesh whose identities injected proxies get.
    pub fn mesh(&self) -> &Mesh {
        &self.cluster.mesh
    }

    /// The identity of a proxy running as `sa` (whose parts may be `$(VAR)` references).
    pub fn local_identity(&self, sa: ServiceAccountRef<'_>) -> String {
        self.mesh().identity(sa)
    }
}

impl ProxyArgs {
    /// Reads the trust anchors file, if one is named, and validates every flag ([`Self::to_config`]).
    pub fn load(&self) -> Result<ProxyConfig, ConfigError> {
        let pem = match &self.identity_trust_anchors_file {
            None => None,
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| ConfigError {
                flag: "identity-trust-anchors-file",
                invalid: InvalidValue {
                    value: path.display().to_string(),
                    problem: format!("cannot be read: {e}"),
                },
            })?),
        };
        self.to_config(pem.as_deref())
    }

    /// Validates every flag; `trust_anchors_pem` is the content of --identity-trust-anchors-file. The error
    /// names the first invalid flag.
    pub fn to_config(&self, trust_anchors_pem: Option<&str>) -> Result<ProxyConfig, ConfigError> {
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
        let control_plane_namespace = flag(
            "control-plane-namespace",
            values::parse_namespace(&self.control_plane_namespace),
        )?;
        let cluster_domain = flag(
            "cluster-domain",
            values::parse_dns_name(&self.cluster_domain),
        )?;
        let trust_domain = flag(
            "identity-trust-domain",
            values::parse_dns_name(&self.identity_trust_domain),
        )?;
        let trust_anchors = match (&self.identity_trust_anchors_file, trust_anchors_pem) {
            (_, None) => None,
            (path, Some(pem)) => {
                let source = path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                Some(flag(
                    "identity-trust-anchors-file",
                    values::parse_trust_anchors(&source, pem),
                )?)
            }
        };
        let cluster = ClusterSettings {
            mesh: Mesh::new(&control_plane_namespace, &trust_domain),
            cluster_domain: cluster_domain.clone(),
            cluster_networks: flag(
                "cluster-networks",
                values::parse_networks(&self.cluster_networks),
            )?,
            default_policy: flag(
                "default-policy",
                values::parse_inbound_policy(&self.default_policy),
            )?,
            default_opaque_ports: flag(
                "opaque-ports",
                values::parse_port_list(&self.opaque_ports),
            )?,
        };
        let default_addr = format!(
            "{DEFAULT_CONTROLLER_NAME}.{control_plane_namespace}.svc.{cluster_domain}:{DEFAULT_CONTROL_PORT}"
        );
        let default_name = cluster.mesh.identity(ServiceAccountRef {
            namespace: &control_plane_namespace,
            name: DEFAULT_CONTROLLER_NAME,
        });
        let api = |addr_flag: &'static str,
                   addr: &Option<String>,
                   name_flag: &'static str,
                   name: &Option<String>| {
            Ok::<_, ConfigError>(ControlPlaneApi {
                addr: match addr {
                    Some(a) => flag(addr_flag, values::parse_host_port(a))?,
                    None => default_addr.clone(),
                },
                name: match name {
                    Some(n) => flag(name_flag, values::parse_dns_name(n))?,
                    None => default_name.clone(),
                },
            })
        };
        Ok(ProxyConfig {
            proxy_image: flag("proxy-image", values::parse_image(&self.proxy_image))?,
            proxy_version: flag("proxy-version", values::parse_tag(&self.proxy_version))?,
            proxy_init_image: match self.proxy_init_image.as_deref() {
                None | Some("") => None,
                Some(image) => Some(flag(
                    "proxy-init-image",
                    values::parse_image_reference(image),
                )?),
            },
            log_level: flag(
                "proxy-log-level",
                values::parse_log_level(&self.proxy_log_level),
            )?,
            log_format: flag(
                "proxy-log-format",
                values::parse_log_format(&self.proxy_log_format),
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
            native_sidecar: self.native_sidecar.resolve(None),
            tuning: Default::default(),
            identity_api: api(
                "proxy-identity-addr",
                &self.proxy_identity_addr,
                "proxy-identity-name",
                &self.proxy_identity_name,
            )?,
            policy_api: api(
                "proxy-policy-addr",
                &self.proxy_policy_addr,
                "proxy-policy-name",
                &self.proxy_policy_name,
            )?,
            destination_api: api(
                "proxy-destination-addr",
                &self.proxy_destination_addr,
                "proxy-destination-name",
                &self.proxy_destination_name,
            )?,
            trust_anchors,
            default_inbound_policy: cluster.default_policy,
            opaque_ports: cluster.default_opaque_ports.clone(),
            cluster,
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

/// `--native-sidecar`: whether the proxy is injected as a native sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NativeSidecar {
    /// Where the API server supports native sidecars (Kubernetes 1.29 or later).
    Auto,
    #[value(name = "true")]
    Always,
    #[value(name = "false")]
    Never,
}

/// The first Kubernetes minor version (1.x) whose API server runs native sidecars by default
/// (the `SidecarContainers` feature is beta and on from 1.29).
pub const NATIVE_SIDECAR_MIN_MINOR: u32 = 29;

impl NativeSidecar {
    /// Whether to inject native sidecars, given the API server's version `(major, minor)` when
    /// known. `Auto` without a version (the offline CLI) means yes.
    pub fn resolve(self, server: Option<(u32, u32)>) -> bool {
        match self {
            NativeSidecar::Always => true,
            NativeSidecar::Never => false,
            NativeSidecar::Auto => {
                server.is_none_or(|(major, minor)| major > 1 || minor >= NATIVE_SIDECAR_MIN_MINOR)
            }
        }
    }
}

impl From<bool> for NativeSidecar {
    fn from(native: bool) -> Self {
        if native {
            NativeSidecar::Always
        } else {
            NativeSidecar::Never
        }
    }
}

/// The `(major, minor)` version of an API server from its `/version` answer: `gitVersion`
/// (`v1.33.13`), else `major` and `minor` (`1`, `33+`).
pub fn server_version(git_version: &str, major: &str, minor: &str) -> Option<(u32, u32)> {
    let digits = |s: &str| -> Option<u32> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s[..end].parse().ok()
    };
    let from_git = git_version.strip_prefix('v').and_then(|rest| {
        let mut parts = rest.split('.');
        Some((digits(parts.next()?)?, digits(parts.next()?)?))
    });
    from_git.or_else(|| Some((digits(major)?, digits(minor)?)))
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
    /// The same values as the flag defaults (no trust anchors).
    fn default() -> Self {
        ProxyArgs::default()
            .to_config(None)
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

    const ANCHORS: &str = include_str!("../tests/trust-anchors.pem");

    fn args(flags: &[&str]) -> ProxyArgs {
        let mut argv = vec!["weft"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().args
    }

    fn parse(flags: &[&str]) -> Result<ProxyConfig, ConfigError> {
        args(flags).to_config(None)
    }

    #[test]
    fn defaults_are_valid_and_match_the_documented_values() {
        let config = parse(&[]).unwrap();
        assert_eq!(config, ProxyConfig::default());
        assert_eq!(config.proxy_image, "cr.l5d.io/linkerd/proxy");
        assert_eq!(config.proxy_version, "edge-26.8.3");
        assert_eq!(config.init_image(), "cr.l5d.io/linkerd/proxy:edge-26.8.3");
        assert_eq!(config.proxy_uid, 2102);
        assert_eq!(config.log_level, "warn,linkerd=info,hickory=error");
        assert_eq!(config.log_format, "plain");
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
        // `--native-sidecar=auto`, with no API server to ask: native.
        assert!(config.native_sidecar);
        assert_eq!(config.mesh().control_plane_namespace(), "weft");
        assert_eq!(config.mesh().trust_domain(), "cluster.local");
        assert_eq!(config.trust_anchors, None);
        let api = ControlPlaneApi {
            addr: "weft-controller.weft.svc.cluster.local:8090".into(),
            name: "weft-controller.weft.serviceaccount.identity.weft.cluster.local".into(),
        };
        assert_eq!(config.identity_api, api);
        assert_eq!(config.policy_api, api);
        assert_eq!(config.destination_api, api);
        assert_eq!(
            config.default_inbound_policy,
            DefaultPolicy::AllUnauthenticated
        );
        assert_eq!(config.cluster.cluster_networks.len(), 5);
        assert_eq!(config.cluster.default_opaque_ports, config.opaque_ports);
        assert_eq!(config.cluster.default_policy, config.default_inbound_policy);
        assert_eq!(
            config.local_identity(ServiceAccountRef {
                namespace: "$(_pod_ns)",
                name: "$(_pod_sa)"
            }),
            "$(_pod_sa).$(_pod_ns).serviceaccount.identity.weft.cluster.local"
        );
    }

    #[test]
    fn control_plane_defaults_follow_namespace_domains_and_each_api_can_be_set() {
        let config = parse(&[
            "--control-plane-namespace=mesh",
            "--cluster-domain=k8s.example",
            "--identity-trust-domain=example.org",
            "--proxy-policy-addr=policy.mesh:9090",
            "--proxy-destination-name=dst.mesh.serviceaccount.identity.mesh.example.org",
            "--proxy-init-image=registry.local/init:v1",
        ])
        .unwrap();
        assert_eq!(
            config.identity_api.addr,
            "weft-controller.mesh.svc.k8s.example:8090"
        );
        assert_eq!(
            config.identity_api.name,
            "weft-controller.mesh.serviceaccount.identity.mesh.example.org"
        );
        assert_eq!(config.policy_api.addr, "policy.mesh:9090");
        assert_eq!(config.policy_api.name, config.identity_api.name);
        assert_eq!(config.destination_api.addr, config.identity_api.addr);
        assert_eq!(
            config.destination_api.name,
            "dst.mesh.serviceaccount.identity.mesh.example.org"
        );
        assert_eq!(config.init_image(), "registry.local/init:v1");
        assert_eq!(
            parse(&["--proxy-init-image="]).unwrap().proxy_init_image,
            None
        );
    }

    #[test]
    fn trust_anchors_are_read_and_must_be_certificates() {
        let dir = std::env::temp_dir().join(format!("weft-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.pem");
        std::fs::write(&good, format!("\n{ANCHORS}\n")).unwrap();
        let flag = format!("--identity-trust-anchors-file={}", good.display());
        let config = args(&[&flag]).load().unwrap();
        assert_eq!(config.trust_anchors.unwrap().pem(), ANCHORS);

        let missing = dir.join("missing.pem");
        let flag = format!("--identity-trust-anchors-file={}", missing.display());
        let err = args(&[&flag]).load().unwrap_err();
        assert_eq!(err.flag, "identity-trust-anchors-file");
        assert!(err.to_string().contains("cannot be read"), "{err}");

        let flag = "--identity-trust-anchors-file=ca.pem";
        for (pem, problem) in [
            ("", "holds no PEM certificate"),
            ("not pem at all", "holds no PEM certificate"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds a \"PRIVATE KEY\" PEM block",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "holds certificate 1 that does not parse",
            ),
        ] {
            let err = args(&[flag]).to_config(Some(pem)).unwrap_err();
            assert_eq!(err.flag, "identity-trust-anchors-file");
            let message = err.to_string();
            assert!(
                message.starts_with("--identity-trust-anchors-file: \"ca.pem\" ")
                    && message.contains(problem)
                    && message.contains("accepted: one or more PEM blocks"),
                "{message}"
            );
        }
        let two = format!("{ANCHORS}{ANCHORS}");
        assert!(args(&[flag]).to_config(Some(&two)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
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
        for (flag, value) in [
            ("proxy-identity-addr", "x"),
            ("proxy-policy-addr", "x"),
            ("proxy-destination-addr", "h:0"),
            ("proxy-identity-name", "a..b"),
            ("proxy-policy-name", "-a"),
            ("proxy-destination-name", "a b"),
            ("identity-trust-domain", "cluster.local."),
            ("cluster-domain", ""),
            ("proxy-log-format", "text"),
            ("proxy-init-image", "a/b:"),
        ] {
            let err = parse(&[&format!("--{flag}={value}")]).unwrap_err();
            assert_eq!(err.flag, flag, "{err}");
        }
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

    #[test]
    fn native_sidecar_flag_forms_and_resolution() {
        let native = |args: &[&str]| {
            <DefaultArgs as clap::Parser>::try_parse_from(
                std::iter::once("weft").chain(args.iter().copied()),
            )
            .map(|a| a.args.native_sidecar)
        };
        assert_eq!(native(&[]).unwrap(), NativeSidecar::Auto);
        assert_eq!(
            native(&["--native-sidecar"]).unwrap(),
            NativeSidecar::Always
        );
        assert_eq!(
            native(&["--native-sidecar=true"]).unwrap(),
            NativeSidecar::Always
        );
        assert_eq!(
            native(&["--native-sidecar=false"]).unwrap(),
            NativeSidecar::Never
        );
        assert_eq!(
            native(&["--native-sidecar=auto"]).unwrap(),
            NativeSidecar::Auto
        );
        let error = native(&["--native-sidecar=yes"]).unwrap_err().to_string();
        assert!(
            error.contains("--native-sidecar") && error.contains("auto, true, false"),
            "{error}"
        );

        for (server, auto) in [
            (None, true),
            (Some((1, 28)), false),
            (Some((1, 29)), true),
            (Some((1, 33)), true),
            (Some((2, 0)), true),
        ] {
            assert_eq!(NativeSidecar::Auto.resolve(server), auto, "{server:?}");
            assert!(NativeSidecar::Always.resolve(server));
            assert!(!NativeSidecar::Never.resolve(server));
        }

        for (git, major, minor, expected) in [
            ("v1.33.13", "1", "33", Some((1, 33))),
            ("v1.28.2-eks-abc", "1", "28+", Some((1, 28))),
            ("", "1", "29+", Some((1, 29))),
            ("weird", "1", "30", Some((1, 30))),
            ("", "", "", None),
            ("v1", "x", "y", None),
        ] {
            assert_eq!(
                server_version(git, major, minor),
                expected,
                "{git} {major} {minor}"
            );
        }
    }
}
