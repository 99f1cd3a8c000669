//! `weft check --linkerd`: what in a cluster that runs Linkerd Weft would serve differently,
//! before a user switches. Pure: it takes the objects [`super::linkerd_fetch`] read.
//!
//! - Each pod Linkerd meshes or that carries Linkerd's annotations goes through Weft's own
//!   injection decision (the webhook's code, with the pod's namespace annotations), after
//!   Linkerd's injected containers and volumes are taken out: a pod Weft would refuse is a
//!   failure (it would not be created again, e.g. on its next rollout), a warning Weft would give
//!   (an annotation it ignores, a Linkerd value that loses to Weft's) is a warning. Pods of one
//!   owner are reported once.
//! - Services whose opaque-ports annotation Weft cannot read (e.g. port names).
//! - Linkerd's resources: `policy.linkerd.io` and ServiceProfiles are not read by Weft. Ignored
//!   authorization policy changes who may connect, so it is a failure; ignored ServiceProfiles
//!   (routes, retries, timeouts) a warning.

use super::Check;
use serde_json::Value;
use std::collections::BTreeMap;
use weft_injector::{Decision, Injector, NO_TRUST_ANCHORS};

/// The containers and volumes Linkerd's injector adds, taken out before Weft decides.
const LINKERD_CONTAINERS: &[&str] = &[
    "linkerd-proxy",
    "linkerd-init",
    "linkerd-network-validator",
    "linkerd-debug",
];
const LINKERD_VOLUME_PREFIX: &str = "linkerd-";

/// A Linkerd resource kind and how many objects of it the cluster holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceCount {
    /// `kind.group`, e.g. `Server.policy.linkerd.io`.
    pub kind: &'static str,
    /// `None`: the CRD is not installed.
    pub count: Option<usize>,
    /// What Weft does instead, for the fix text.
    pub instead: &'static str,
    /// Whether ignoring it changes who may connect (a failure) or only traffic behaviour (a
    /// warning).
    pub security: bool,
}

/// The kinds looked for: `(CRD name, kind.group, what Weft does instead, security)`.
pub const KINDS: &[(&str, &str, &str, bool)] = &[
    (
        "servers.policy.linkerd.io",
        "Server.policy.linkerd.io",
        "recreate them as policy.weft.dev/v1beta1 Servers (the same shape)",
        true,
    ),
    (
        "serverauthorizations.policy.linkerd.io",
        "ServerAuthorization.policy.linkerd.io",
        "recreate them as policy.weft.dev/v1beta1 ServerAuthorizations (the same shape)",
        true,
    ),
    (
        "authorizationpolicies.policy.linkerd.io",
        "AuthorizationPolicy.policy.linkerd.io",
        "recreate them as policy.weft.dev/v1beta1 AuthorizationPolicies (change the group in apiVersion, targetRef and requiredAuthenticationRefs)",
        true,
    ),
    (
        "meshtlsauthentications.policy.linkerd.io",
        "MeshTLSAuthentication.policy.linkerd.io",
        "recreate them in policy.weft.dev/v1beta1 (the same shape)",
        true,
    ),
    (
        "networkauthentications.policy.linkerd.io",
        "NetworkAuthentication.policy.linkerd.io",
        "recreate them in policy.weft.dev/v1beta1 (the same shape)",
        true,
    ),
    (
        "httproutes.policy.linkerd.io",
        "HTTPRoute.policy.linkerd.io",
        "use gateway.networking.k8s.io HTTPRoutes with a policy.weft.dev Server parent",
        true,
    ),
    (
        "httplocalratelimitpolicies.policy.linkerd.io",
        "HTTPLocalRateLimitPolicy.policy.linkerd.io",
        "Weft has no rate limits yet: requests are not limited",
        false,
    ),
    (
        "egressnetworks.policy.linkerd.io",
        "EgressNetwork.policy.linkerd.io",
        "Weft does not govern egress yet: traffic to outside the cluster is forwarded as is",
        true,
    ),
    (
        "serviceprofiles.linkerd.io",
        "ServiceProfile.linkerd.io",
        "Weft serves no ServiceProfile routes, retries or timeouts: the proxies' defaults apply",
        false,
    ),
    (
        "externalworkloads.workload.linkerd.io",
        "ExternalWorkload.workload.linkerd.io",
        "Weft meshes no workloads outside the cluster",
        false,
    ),
];

/// The report lines for Linkerd's resources.
pub fn resources(counts: &[Result<ResourceCount, String>]) -> Vec<Check> {
    counts
        .iter()
        .map(|count| match count {
            Err(error) => Check::fail(
                format!("cannot count Linkerd's resources: {error}"),
                "check that the kubeconfig's user may list CRDs and the resources of linkerd.io groups",
            ),
            Ok(ResourceCount { kind, count: None, .. }) => {
                Check::ok(format!("{kind}: the CRD is not installed"))
            }
            Ok(ResourceCount { kind, count: Some(0), .. }) => Check::ok(format!("{kind}: none")),
            Ok(ResourceCount {
                kind,
                count: Some(n),
                instead,
                security,
            }) => {
                let message = format!("{kind}: {n} in the cluster, which Weft does not read");
                if *security {
                    Check::fail(message, *instead)
                } else {
                    Check::warn(message, *instead)
                }
            }
        })
        .collect()
}

/// A pod as listed: its namespace, a stable name of its owner (`Deployment/web` for a
/// ReplicaSet's pod, else `<kind>/<name>`, else `pod/<name>`), and the pod as JSON.
#[derive(Clone, Debug)]
pub struct ListedPod {
    pub namespace: String,
    pub owner: String,
    pub pod: Value,
}

/// Whether a pod is Linkerd's business: meshed by Linkerd or carrying any of its annotations.
fn concerns_linkerd(pod: &Value) -> bool {
    let meshed = ["containers", "initContainers"].iter().any(|field| {
        pod["spec"][field]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == "linkerd-proxy"))
    });
    let annotated = pod["metadata"]["annotations"]
        .as_object()
        .is_some_and(|a| a.keys().any(|k| k.contains("linkerd.io/")));
    meshed || annotated
}

/// The pod as it was before Linkerd injected it, as far as Weft's decision cares: without
/// Linkerd's containers and volumes.
fn without_linkerd(pod: &Value) -> Value {
    let mut pod = pod.clone();
    for field in ["containers", "initContainers"] {
        if let Some(cs) = pod["spec"][field].as_array_mut() {
            cs.retain(|c| !LINKERD_CONTAINERS.contains(&c["name"].as_str().unwrap_or_default()));
        }
    }
    if let Some(vs) = pod["spec"]["volumes"].as_array_mut() {
        vs.retain(|v| {
            !v["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with(LINKERD_VOLUME_PREFIX)
        });
    }
    pod
}

/// The report lines for pods: per owner, what Weft's injection would do differently.
pub fn pods(
    injector: &Injector,
    pods: &[ListedPod],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Check> {
    // One line per owner and outcome: its pods share a template.
    let mut lines: BTreeMap<(String, String), Check> = BTreeMap::new();
    let mut concerned = 0;
    for listed in pods.iter().filter(|p| concerns_linkerd(&p.pod)) {
        concerned += 1;
        let key = (listed.namespace.clone(), listed.owner.clone());
        if lines.contains_key(&key) {
            continue;
        }
        let what = format!("{}/{}", listed.namespace, listed.owner);
        let pod = without_linkerd(&listed.pod);
        let line = match injector.inject(&pod, &listed.namespace, namespaces.get(&listed.namespace))
        {
            Err(rejection) => Some(Check::fail(
                format!(
                    "{what}: Weft's webhook would refuse its pods: {}",
                    rejection.message
                ),
                "change the annotation before switching (see the README's migration section)",
            )),
            Ok(decision) => {
                let warnings: Vec<&str> = decision
                    .warnings()
                    .iter()
                    .map(String::as_str)
                    .filter(|w| *w != NO_TRUST_ANCHORS)
                    .collect();
                let meshed_by_linkerd = listed.pod["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .chain(listed.pod["spec"]["initContainers"].as_array())
                    .flatten()
                    .any(|c| c["name"] == "linkerd-proxy");
                match (&decision, meshed_by_linkerd) {
                    (Decision::Skip { reason, .. }, true) => Some(Check::fail(
                        format!("{what}: meshed by Linkerd, but Weft would not mesh it ({reason})"),
                        "annotate it or its namespace weft.dev/inject: enabled (or linkerd.io/inject: enabled)",
                    )),
                    _ if !warnings.is_empty() => Some(Check::warn(
                        format!("{what}: {}", warnings.join("; ")),
                        "Weft ignores these; see the README's migration section",
                    )),
                    _ => None,
                }
            }
        };
        if let Some(line) = line {
            lines.insert(key, line);
        }
    }
    let mut checks: Vec<Check> = lines.into_values().collect();
    if checks.is_empty() {
        checks.push(Check::ok(format!(
            "{concerned} pod(s) meshed by or annotated for Linkerd: Weft would mesh them the same way"
        )));
    }
    checks
}

/// The report lines for Services: an opaque-ports annotation (either spelling) Weft cannot read.
pub fn services(services: &[(String, String, BTreeMap<String, String>)]) -> Vec<Check> {
    let mut checks = Vec::new();
    for (namespace, name, annotations) in services {
        let Some(found) =
            weft_core::linkerd::lookup(annotations, weft_core::names::OPAQUE_PORTS_ANNOTATION)
        else {
            continue;
        };
        if let Err(error) = weft_core::PortList::parse(found.value) {
            checks.push(Check::warn(
                format!(
                    "Service {namespace}/{name}: {}: {:?} {}: Weft treats none of its ports as opaque",
                    found.key, found.value, error.problem
                ),
                "list the port numbers instead of names",
            ));
        }
    }
    if checks.is_empty() {
        checks.push(Check::ok(
            "every Service's opaque-ports annotation is one Weft reads",
        ));
    }
    checks
}

#[cfg(test)]
mod tests;
