//! Whether a pod gets the proxy: the [`Injector`] and the outcomes of a decision.
//!
//! Order of the checks (the first that applies wins):
//! 1. system namespaces and the control plane's own namespace are skipped, whatever the pod says, so a bad
//!    annotation can never block the cluster's own pods;
//! 2. the pod's `weft.dev/inject` or Linkerd's `linkerd.io/inject` (`enabled` | `disabled`; Weft's
//!    wins when both are set, with a warning when they differ; any other value rejects the pod),
//!    else the namespace's (an invalid value counts as not enabled, with a warning);
//! 3. pods that already carry Weft's containers, ports or volumes are skipped (API-server reinvocation is harmless);
//! 4. `hostNetwork` pods are skipped;
//! 5. overrides are validated (an invalid pod-level value rejects), then app ports are checked against the
//!    proxy's ports (a clash rejects), and the patch is built (with a warning when the configuration has no
//!    trust anchors, as the proxy will not start).

use crate::{
    config::ProxyConfig,
    overrides::effective_config,
    patch::{self, PatchPlan},
    pod_view::{container_name, container_ports, PodView},
    rejection::{RejectReason, Rejection},
    rendered::RenderedSidecars,
    sidecar::{self, INIT_NAME, PROXY_NAME, PROXY_PORTS},
    values::quoted,
};
use std::{collections::BTreeMap, fmt, sync::Arc};
use weft_core::linkerd;

/// The annotation, on a namespace or a pod, that opts into injection.
pub use weft_core::names::INJECT_ANNOTATION;

/// Namespaces whose pods are never injected.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The warning on every injection when the configuration has no trust anchors.
pub const NO_TRUST_ANCHORS: &str = "the injector has no identity trust anchors (--identity-trust-anchors-file), so the injected proxy will exit at start-up: LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS is required";

/// The result of deciding about one pod.
#[derive(Debug)]
pub enum Decision {
    /// Inject: apply `patch` to the pod.
    Inject {
        patch: json_patch::Patch,
        warnings: Vec<String>,
    },
    /// Leave the pod unchanged.
    Skip {
        reason: SkipReason,
        warnings: Vec<String>,
    },
}

impl Decision {
    pub fn warnings(&self) -> &[String] {
        match self {
            Decision::Inject { warnings, .. } | Decision::Skip { warnings, .. } => warnings,
        }
    }
}

/// Why a pod is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Neither the pod nor its namespace says `weft.dev/inject: enabled`.
    NotEnabled,
    /// The pod says `weft.dev/inject: disabled`.
    Disabled,
    /// The pod uses the host's network namespace.
    HostNetwork,
    /// The pod already has Weft's containers.
    AlreadyInjected,
    /// The pod is in `kube-system`, `kube-public` or `kube-node-lease`.
    SystemNamespace,
    /// The pod is in the Weft control plane's namespace.
    ControlPlaneNamespace,
}

impl SkipReason {
    /// A snake_case name, used as a metrics label.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::NotEnabled => "not_enabled",
            SkipReason::Disabled => "disabled",
            SkipReason::HostNetwork => "host_network",
            SkipReason::AlreadyInjected => "already_injected",
            SkipReason::SystemNamespace => "system_namespace",
            SkipReason::ControlPlaneNamespace => "control_plane_namespace",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotEnabled => "injection not enabled on the pod or its namespace",
            SkipReason::Disabled => "weft.dev/inject is disabled on the pod",
            SkipReason::HostNetwork => "the pod uses the host network",
            SkipReason::AlreadyInjected => "the pod is already injected",
            SkipReason::SystemNamespace => "system namespace",
            SkipReason::ControlPlaneNamespace => "Weft control plane namespace",
        })
    }
}

/// Decides about pods and builds their patches with one validated configuration.
#[derive(Clone, Debug)]
pub struct Injector {
    config: ProxyConfig,
    /// The sidecar objects rendered once for `config` (shared by clones).
    rendered: Option<Arc<RenderedSidecars>>,
}

/// A decision whose patch is still a plan (see [`PatchPlan`]).
#[derive(Debug)]
pub(crate) enum Planned {
    Inject {
        plan: Box<PatchPlan>,
        warnings: Vec<String>,
    },
    Skip {
        reason: SkipReason,
        warnings: Vec<String>,
    },
}

/// The outcome of the checks that do not depend on the namespace.
#[derive(Debug)]
pub(crate) enum Precheck {
    Skip(SkipReason),
    /// The pod itself says enabled (`Some(true)`), disabled is a skip, or says nothing (`None`).
    Continue {
        pod_enabled: Option<bool>,
    },
}

impl Injector {
    pub fn new(config: ProxyConfig) -> Self {
        Self {
            rendered: RenderedSidecars::new(&config).map(Arc::new),
            config,
        }
    }

    /// The sidecar objects rendered for the flag configuration, for [`PatchPlan::write_json`].
    pub(crate) fn rendered(&self) -> Option<&RenderedSidecars> {
        self.rendered.as_deref()
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Decides and builds the patch for one pod, or a pod template (`{metadata, spec}`, same shape).
    /// `namespace_annotations`: the namespace's annotations if known (`None`: unknown namespace, not enabled).
    pub fn inject(
        &self,
        pod: &serde_json::Value,
        namespace: &str,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Decision, Rejection> {
        self.decide(&PodView::from_json(pod), namespace, namespace_annotations)
    }

    pub(crate) fn decide(
        &self,
        pod: &PodView<'_>,
        namespace: &str,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Decision, Rejection> {
        Ok(match self.plan(pod, namespace, namespace_annotations)? {
            Planned::Inject { plan, warnings } => Decision::Inject {
                patch: plan.into_patch(),
                warnings,
            },
            Planned::Skip { reason, warnings } => Decision::Skip { reason, warnings },
        })
    }

    /// Decides; an injection is returned as a plan, which the webhook writes as JSON directly.
    pub(crate) fn plan(
        &self,
        pod: &PodView<'_>,
        namespace: &str,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Planned, Rejection> {
        match self.precheck(pod, namespace)? {
            Precheck::Skip(reason) => Ok(Planned::Skip {
                reason,
                warnings: Vec::new(),
            }),
            Precheck::Continue { pod_enabled } => {
                self.plan_prechecked(pod, namespace, pod_enabled, namespace_annotations)
            }
        }
    }

    /// The checks that need neither the namespace's annotations nor the configuration
    /// overrides, with this injector's control-plane namespace.
    pub(crate) fn precheck(
        &self,
        pod: &PodView<'_>,
        namespace: &str,
    ) -> Result<Precheck, Rejection> {
        precheck(
            pod,
            namespace,
            Some(self.config.mesh().control_plane_namespace()),
        )
    }

    /// [`Injector::plan`] after [`Injector::precheck`] said `Continue { pod_enabled }`.
    pub(crate) fn plan_prechecked(
        &self,
        pod: &PodView<'_>,
        namespace: &str,
        pod_enabled: Option<bool>,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Planned, Rejection> {
        let mut warnings = Vec::new();
        if let Ok(Some(found)) = pod.setting(INJECT_ANNOTATION) {
            warnings.extend(found.conflict_warnings("pod"));
        }
        let found = namespace_annotations.and_then(|a| linkerd::lookup(a, INJECT_ANNOTATION));
        if let Some(found) = &found {
            warnings.extend(found.conflict_warnings(&format!("namespace {namespace}")));
        }
        let namespace_enabled = match found {
            None => false,
            Some(found) => match parse_inject(found.key, found.value) {
                Ok(enabled) => enabled,
                Err(problem) => {
                    warnings.push(format!(
                        "namespace {namespace}: {problem}; the namespace counts as not enabled"
                    ));
                    false
                }
            },
        };
        if !pod_enabled.unwrap_or(namespace_enabled) {
            return Ok(Planned::Skip {
                reason: SkipReason::NotEnabled,
                warnings,
            });
        }
        let (config, ns_warnings) =
            effective_config(&self.config, namespace, namespace_annotations, pod)?;
        warnings.extend(ns_warnings);
        check_port_conflicts(pod)?;
        if config.trust_anchors.is_none() {
            warnings.push(NO_TRUST_ANCHORS.to_string());
        }
        let plan = Box::new(patch::build(pod, config)?);
        Ok(Planned::Inject { plan, warnings })
    }
}

/// The checks that need neither the namespace's annotations nor the configuration overrides.
/// `control_plane`: the control plane's namespace, when known.
fn precheck(
    pod: &PodView<'_>,
    namespace: &str,
    control_plane: Option<&str>,
) -> Result<Precheck, Rejection> {
    if SYSTEM_NAMESPACES.contains(&namespace) {
        return Ok(Precheck::Skip(SkipReason::SystemNamespace));
    }
    if control_plane == Some(namespace) {
        return Ok(Precheck::Skip(SkipReason::ControlPlaneNamespace));
    }
    let found = pod
        .setting(INJECT_ANNOTATION)
        .map_err(|e| Rejection::not_a_string(e.key))?;
    let pod_enabled = match found {
        None => None,
        Some(found) => match parse_inject(found.key, found.value) {
            Ok(true) => Some(true),
            Ok(false) => return Ok(Precheck::Skip(SkipReason::Disabled)),
            Err(message) => {
                return Err(Rejection {
                    reason: RejectReason::InvalidAnnotation,
                    message,
                })
            }
        },
    };
    if already_injected(pod) {
        return Ok(Precheck::Skip(SkipReason::AlreadyInjected));
    }
    if pod.host_network() {
        return Ok(Precheck::Skip(SkipReason::HostNetwork));
    }
    Ok(Precheck::Continue { pod_enabled })
}

/// The value of `weft.dev/inject` or `linkerd.io/inject` (`key`): whether it enables injection,
/// or why it is not valid. Linkerd's `ingress` mode is named as such: Weft does not run proxies in
/// ingress mode yet, and injecting a normal proxy instead would change how the pod's traffic is
/// routed.
fn parse_inject(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        "ingress" => Err(format!(
            "{key}: \"ingress\" (Linkerd's ingress mode) is not supported by Weft (accepted: \"enabled\", \"disabled\")"
        )),
        other => Err(format!(
            "{key}: {} is not valid (accepted: \"enabled\", \"disabled\")",
            quoted(other)
        )),
    }
}

/// A container, port or volume that only injection creates is present.
fn already_injected(pod: &PodView<'_>) -> bool {
    let weft_container = pod.all_containers().any(|(c, _)| {
        let name = container_name(c);
        name == PROXY_NAME
            || name == INIT_NAME
            || container_ports(c)
                .any(|p| matches!(p.name, Some(n) if sidecar::PROXY_PORT_NAMES.contains(&n)))
    });
    weft_container
        || pod.spec_array("volumes").iter().any(|v| {
            v.get("name")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|name| sidecar::VOLUME_NAMES.contains(&name))
        })
}

/// An app container (or init container) declaring a TCP port the proxy uses would break traffic.
fn check_port_conflicts(pod: &PodView<'_>) -> Result<(), Rejection> {
    for (container, init) in pod.all_containers() {
        for port in container_ports(container) {
            let Some(number) = port.port else { continue };
            if port.tcp && PROXY_PORTS.iter().any(|p| i64::from(*p) == number) {
                return Err(Rejection {
                    reason: RejectReason::PortConflict,
                    message: format!(
                        "{kind} {name:?} declares port {number}, which the Weft proxy uses (4140 outbound, 4143 inbound, 4191 admin); use another port or set {INJECT_ANNOTATION}: disabled",
                        kind = if init { "init container" } else { "container" },
                        name = port.container,
                    ),
                });
            }
        }
    }
    Ok(())
}
