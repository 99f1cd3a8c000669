//! The policy CRDs: installed, established, and the same versions and schemas as the ones this
//! binary was built with (`weft_policy_k8s_api::crds()`, which `weft-crdgen` writes to
//! `charts/weft/crds/`). And the Gateway API's HTTPRoute CRD, a prerequisite the chart does not
//! install: installed, established and serving `v1` ([`gateway_api`]).

use super::{Check, Fetched};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use serde_json::Value;

/// Checks one CRD that this binary expects against what the API server has.
pub fn check(
    expected: &CustomResourceDefinition,
    live: &Fetched<CustomResourceDefinition>,
) -> Check {
    let name = expected.metadata.name.as_deref().unwrap_or("(unnamed CRD)");
    let fix = "kubectl apply -f charts/weft/crds/ (`helm upgrade` does not update CRDs: Helm \
               applies the chart's crds/ only on the first install)";
    let live = match live {
        Fetched::Found(live) => live,
        Fetched::NotFound => {
            return Check::fail(format!("CRD {name} is not installed"), fix);
        }
        Fetched::Failed(error) => {
            return Check::fail(
                format!("cannot read CRD {name}: {error}"),
                "run weft check as a user that may get customresourcedefinitions",
            );
        }
    };
    if let Some(problem) = not_established(live) {
        return Check::fail(format!("CRD {name} is not established: {problem}"), fix);
    }
    let versions = |crd: &CustomResourceDefinition| {
        crd.spec
            .versions
            .iter()
            .map(summary)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (want, have) = (versions(expected), versions(live));
    if want != have {
        return Check::fail(
            format!("CRD {name} is not current: it serves {have}, this weft expects {want}"),
            fix,
        );
    }
    for (want, have) in expected.spec.versions.iter().zip(&live.spec.versions) {
        let want_schema = normalized(&want.schema);
        let have_schema = normalized(&have.schema);
        if let Some(path) = first_difference(&want_schema, &have_schema, String::new()) {
            return Check::fail(
                format!(
                    "CRD {name} is not current: the schema of {} differs from this weft's at {}",
                    want.name,
                    if path.is_empty() { "the root" } else { &path }
                ),
                fix,
            );
        }
    }
    Check::ok(format!("CRD {name} is installed and current ({want})"))
}

/// The Gateway API CRD Weft reads (`gateway.networking.k8s.io/v1` HTTPRoutes).
pub const HTTPROUTES: &str = "httproutes.gateway.networking.k8s.io";

/// The Gateway API release whose CRDs Weft is built against (the Rust crate `gateway-api` 0.16);
/// `bin/gateway-api-crds` pins the same one.
pub const GATEWAY_API_VERSION: &str = "v1.2.1";

/// Where the fix texts send users for the Gateway API CRDs.
fn gateway_api_fix() -> String {
    format!(
        "install the Gateway API standard CRDs, {GATEWAY_API_VERSION} or later: kubectl apply \
         --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/\
         {GATEWAY_API_VERSION}/standard-install.yaml (in a Weft checkout, bin/gateway-api-crds \
         prints a directory holding a local copy to apply instead)"
    )
}

/// Checks the HTTPRoute CRD of the Gateway API: installed, established, serving `v1`, and from
/// [`GATEWAY_API_VERSION`] or later when its `gateway.networking.k8s.io/bundle-version`
/// annotation says.
///
/// Problems with it are warnings, not failures: it is the cluster's prerequisite (shared with
/// other Gateway API users, never installed by Weft's chart), and `weft check` keeps `[FAIL]`
/// for Weft's own installation. A controller that cannot run without it fails the Controller
/// check in the same report anyway. A CRD that cannot be read fails, as for the policy CRDs.
pub fn gateway_api(live: &Fetched<CustomResourceDefinition>) -> Check {
    let name = HTTPROUTES;
    let live = match live {
        Fetched::Found(live) => live,
        Fetched::NotFound => {
            return Check::warn(
                format!(
                    "CRD {name} (Gateway API) is not installed: Weft reads HTTPRoutes for \
                     per-route policy"
                ),
                gateway_api_fix(),
            );
        }
        Fetched::Failed(error) => {
            return Check::fail(
                format!("cannot read CRD {name}: {error}"),
                "run weft check as a user that may get customresourcedefinitions",
            );
        }
    };
    if let Some(problem) = not_established(live) {
        return Check::warn(
            format!("CRD {name} (Gateway API) is not established: {problem}"),
            gateway_api_fix(),
        );
    }
    let versions = live
        .spec
        .versions
        .iter()
        .map(summary)
        .collect::<Vec<_>>()
        .join(", ");
    if !live
        .spec
        .versions
        .iter()
        .any(|v| v.name == "v1" && v.served)
    {
        return Check::warn(
            format!("CRD {name} (Gateway API) does not serve v1: it serves {versions}"),
            gateway_api_fix(),
        );
    }
    let bundle = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("gateway.networking.k8s.io/bundle-version"));
    match bundle {
        Some(bundle) => match (release(bundle), release(GATEWAY_API_VERSION)) {
            (Some(have), Some(want)) if have < want => Check::warn(
                format!(
                    "CRD {name} is from Gateway API {bundle}, older than the \
                     {GATEWAY_API_VERSION} Weft is built against"
                ),
                gateway_api_fix(),
            ),
            _ => Check::ok(format!(
                "CRD {name} (Gateway API {bundle}) is installed and serves v1"
            )),
        },
        None => Check::ok(format!(
            "CRD {name} (Gateway API) is installed and serves v1"
        )),
    }
}

/// `v1.2.1` (or `v1.3.0-rc.1`) as the numbers of its release, for ordering.
fn release(version: &str) -> Option<Vec<u64>> {
    let release = version.trim_start_matches('v');
    let release = release.split('-').next()?;
    release.split('.').map(|n| n.parse().ok()).collect()
}

/// `v1beta1 (served, stored)`.
fn summary(version: &CustomResourceDefinitionVersion) -> String {
    let mut flags = vec![];
    if version.served {
        flags.push("served");
    }
    if version.storage {
        flags.push("stored");
    }
    if flags.is_empty() {
        flags.push("not served");
    }
    format!("{} ({})", version.name, flags.join(", "))
}

/// Why the CRD's `Established` condition is not `True`, if it is not.
fn not_established(crd: &CustomResourceDefinition) -> Option<String> {
    let conditions = crd.status.as_ref().and_then(|s| s.conditions.as_ref());
    let established = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Established");
    match established {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(c.message.clone().unwrap_or_else(|| c.status.clone())),
        None => Some("it has no Established condition yet".to_string()),
    }
}

/// The schema as JSON, without nulls and empty lists or maps: the API server drops those, so
/// they are no difference.
fn normalized(schema: &impl serde::Serialize) -> Value {
    fn strip(value: Value) -> Option<Value> {
        match value {
            Value::Null => None,
            Value::Array(items) => {
                let items: Vec<_> = items.into_iter().filter_map(strip).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Value::Object(map) => {
                let map: serde_json::Map<_, _> = map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, strip(v)?)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            other => Some(other),
        }
    }
    serde_json::to_value(schema)
        .ok()
        .and_then(strip)
        .unwrap_or(Value::Null)
}

/// The path (`.openAPIV3Schema.properties.spec...`) of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|key| {
                let path = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(a), Some(b)) => first_difference(a, b, path),
                    _ => Some(path),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        _ => Some(path),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::check::Status;

    fn established(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
        crd.status = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Established", "status": "True"}],
        }))
        .unwrap();
        crd
    }

    fn server_crd() -> CustomResourceDefinition {
        weft_policy_k8s_api::crds().remove(0)
    }

    #[test]
    fn the_generated_crd_as_stored_passes() {
        let expected = server_crd();
        // The API server returns it as applied from the chart's YAML.
        let yaml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../charts/weft/crds/servers.policy.weft.dev.yaml"
        ))
        .unwrap();
        let live = established(serde_norway::from_str(&yaml).unwrap());
        let check = check(&expected, &Fetched::Found(live));
        assert_eq!(
            check,
            Check::ok(
                "CRD servers.policy.weft.dev is installed and current (v1beta1 (served, stored))"
            )
        );
    }

    #[test]
    fn missing_unestablished_and_unreadable_crds_fail() {
        let expected = server_crd();
        let missing = check(&expected, &Fetched::NotFound);
        assert_eq!(missing.status, Status::Fail);
        assert_eq!(
            missing.message,
            "CRD servers.policy.weft.dev is not installed"
        );
        assert!(missing
            .fix
            .unwrap()
            .starts_with("kubectl apply -f charts/weft/crds/"));

        let new = check(&expected, &Fetched::Found(server_crd()));
        assert_eq!(new.status, Status::Fail);
        assert!(new.message.contains("not established"), "{}", new.message);

        let forbidden = check(&expected, &Fetched::Failed("403 Forbidden".into()));
        assert_eq!(forbidden.status, Status::Fail);
        assert!(forbidden.message.contains("403 Forbidden"));
    }

    #[test]
    fn other_versions_fail() {
        let expected = server_crd();
        let mut live = established(server_crd());
        live.spec.versions[0].name = "v1alpha1".into();
        let stale = check(&expected, &Fetched::Found(live));
        assert_eq!(stale.status, Status::Fail);
        assert_eq!(
            stale.message,
            "CRD servers.policy.weft.dev is not current: it serves v1alpha1 (served, stored), \
             this weft expects v1beta1 (served, stored)"
        );
    }

    #[test]
    fn a_changed_schema_fails_naming_where() {
        let expected = server_crd();
        let mut live = serde_json::to_value(established(server_crd())).unwrap();
        let port = &mut live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"]["port"];
        assert!(port.is_object(), "the fixture has spec.port");
        port["description"] = "an older description".into();
        let live: CustomResourceDefinition = serde_json::from_value(live).unwrap();
        let stale = check(&expected, &Fetched::Found(live));
        assert_eq!(stale.status, Status::Fail);
        assert_eq!(
            stale.message,
            "CRD servers.policy.weft.dev is not current: the schema of v1beta1 differs from this \
             weft's at .openAPIV3Schema.properties.spec.properties.port.description"
        );
    }

    /// An HTTPRoute CRD as the API server returns it: `versions` (name, served), the bundle
    /// version annotation if any, and the `Established` condition's status if any.
    fn httproutes(
        versions: &[(&str, bool)],
        bundle: Option<&str>,
        established: Option<&str>,
    ) -> Fetched<CustomResourceDefinition> {
        let versions: Vec<_> = versions
            .iter()
            .map(|(name, served)| {
                serde_json::json!({
                    "name": name, "served": served, "storage": *name == "v1",
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                })
            })
            .collect();
        let conditions: Vec<_> = established
            .into_iter()
            .map(|status| {
                serde_json::json!({"type": "Established", "status": status, "message": "not yet"})
            })
            .collect();
        let annotations: serde_json::Map<_, _> = bundle
            .into_iter()
            .map(|b| {
                (
                    "gateway.networking.k8s.io/bundle-version".to_string(),
                    b.into(),
                )
            })
            .collect();
        Fetched::Found(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": HTTPROUTES, "annotations": annotations},
                "spec": {
                    "group": "gateway.networking.k8s.io",
                    "names": {"kind": "HTTPRoute", "plural": "httproutes"},
                    "scope": "Namespaced",
                    "versions": versions,
                },
                "status": {"conditions": conditions},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn gateway_api_httproutes_must_be_established_and_serve_v1() {
        let v1_v1beta1 = [("v1", true), ("v1beta1", true)];
        let cases: Vec<(&str, Fetched<CustomResourceDefinition>, Status, &str)> = vec![
            (
                "the pinned release",
                httproutes(&v1_v1beta1, Some("v1.2.1"), Some("True")),
                Status::Ok,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API v1.2.1) is installed and \
                 serves v1",
            ),
            (
                "a newer release",
                httproutes(&v1_v1beta1, Some("v1.10.0-rc.1"), Some("True")),
                Status::Ok,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API v1.10.0-rc.1) is \
                 installed and serves v1",
            ),
            (
                "no bundle version",
                httproutes(&[("v1", true)], None, Some("True")),
                Status::Ok,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) is installed and serves v1",
            ),
            (
                "missing",
                Fetched::NotFound,
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) is not installed: Weft \
                 reads HTTPRoutes for per-route policy",
            ),
            (
                "not established",
                httproutes(&v1_v1beta1, Some("v1.2.1"), Some("False")),
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) is not established: not \
                 yet",
            ),
            (
                "no conditions yet",
                httproutes(&v1_v1beta1, Some("v1.2.1"), None),
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) is not established: it \
                 has no Established condition yet",
            ),
            (
                "only v1beta1 (before Gateway API v1.0)",
                httproutes(&[("v1beta1", true)], Some("v0.8.1"), Some("True")),
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) does not serve v1: it \
                 serves v1beta1 (served)",
            ),
            (
                "v1 not served",
                httproutes(&[("v1", false), ("v1beta1", true)], None, Some("True")),
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io (Gateway API) does not serve v1: it \
                 serves v1 (stored), v1beta1 (served)",
            ),
            (
                "an older release",
                httproutes(&v1_v1beta1, Some("v1.0.0"), Some("True")),
                Status::Warn,
                "CRD httproutes.gateway.networking.k8s.io is from Gateway API v1.0.0, older than \
                 the v1.2.1 Weft is built against",
            ),
            (
                "unreadable",
                Fetched::Failed("403 Forbidden".into()),
                Status::Fail,
                "cannot read CRD httproutes.gateway.networking.k8s.io: 403 Forbidden",
            ),
        ];
        for (case, live, status, message) in cases {
            let check = gateway_api(&live);
            assert_eq!(
                (check.status, check.message.as_str()),
                (status, message),
                "{case}"
            );
            let fix = check.fix.unwrap_or_default();
            match status {
                Status::Ok => assert!(fix.is_empty(), "{case}: {fix}"),
                Status::Warn => {
                    assert!(
                        fix.contains("kubectl apply --server-side -f "),
                        "{case}: {fix}"
                    );
                    assert!(fix.contains("v1.2.1 or later"), "{case}: {fix}");
                    assert!(fix.contains("bin/gateway-api-crds"), "{case}: {fix}");
                }
                Status::Fail => assert!(fix.contains("customresourcedefinitions"), "{case}"),
            }
        }
    }

    #[test]
    fn the_gateway_api_version_is_the_one_bin_gateway_api_crds_pins() {
        let script = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bin/gateway-api-crds"
        ))
        .unwrap();
        assert!(
            script
                .lines()
                .any(|l| l == format!("GATEWAY_API_VERSION={GATEWAY_API_VERSION}")),
            "bin/gateway-api-crds must pin {GATEWAY_API_VERSION}"
        );
    }

    #[test]
    fn empty_lists_and_nulls_are_no_difference() {
        let a = serde_json::json!({"x": {"required": [], "y": null, "z": 1}});
        let b = serde_json::json!({"x": {"z": 1}});
        assert_eq!(
            first_difference(&normalized(&a), &normalized(&b), String::new()),
            None
        );
        let c = serde_json::json!({"x": {"z": 2}});
        assert_eq!(
            first_difference(&normalized(&a), &normalized(&c), String::new()),
            Some(".x.z".to_string())
        );
    }
}
