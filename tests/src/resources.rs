//! Namespaces, pods and CRDs the tests create.

use anyhow::{Context, Result};
use k8s_openapi::{
    api::core::v1::{Namespace, Pod, ServiceAccount},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

/// Creates a namespace `{prefix}-{unique}` with the given annotations and labels.
pub async fn namespace(
    client: &kube::Client,
    prefix: &str,
    annotations: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> Result<String> {
    let name = format!("{prefix}-{}", crate::unique_suffix());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some(to_map(annotations)),
            labels: Some(to_map(labels)),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    default_service_account(client, &name).await?;
    Ok(name)
}

/// Creates the namespace's `default` ServiceAccount, which kube-controller-manager would create
/// in a full cluster (the local one has none); the ServiceAccount admission plugin requires it.
pub async fn default_service_account(client: &kube::Client, namespace: &str) -> Result<()> {
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("default".to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => {
            Err(error).with_context(|| format!("creating ServiceAccount {namespace}/default"))
        }
    }
}

/// Deletes a namespace the test created (in the background: the namespace controller finishes).
pub async fn delete_namespace(client: &kube::Client, name: &str) -> Result<()> {
    Api::<Namespace>::all(client.clone())
        .delete(name, &Default::default())
        .await
        .with_context(|| format!("deleting namespace {name}"))?;
    Ok(())
}

pub async fn annotate_namespace(
    client: &kube::Client,
    name: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

pub fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A small pod with one app container listening on 8080.
pub fn pod(name: &str, annotations: &[(&str, &str)]) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": to_map(annotations), "labels": {"app": name}},
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.example/app:1",
                "ports": [{"name": "http", "containerPort": 8080}],
            }],
        },
    }))
    .expect("the literal pod is a valid Pod")
}

/// An AdmissionReview for creating a plain pod in `namespace`, as the API server would send.
pub fn pod_review(namespace: &str) -> Vec<u8> {
    let pod = pod("probe", &[]);
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "e2e-probe",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "e2e"},
            "object": pod,
            "dryRun": true,
        }
    }))
    .expect("a review serializes")
}

pub fn container_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|cs| cs.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let containers = spec
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    (init, containers)
}

/// Checks that `pod` is injected once, in the default layout: `weft-init` first, then `weft-proxy`
/// as a native sidecar (an init container with `restartPolicy: Always`), and no proxy among the
/// app containers.
pub fn ensure_injected_natively(pod: &Pod) -> Result<()> {
    let (init, containers) = container_names(pod);
    anyhow::ensure!(
        init.get(..2) == Some(&["weft-init".to_string(), "weft-proxy".to_string()][..])
            && init
                .iter()
                .chain(&containers)
                .filter(|c| *c == "weft-proxy")
                .count()
                == 1,
        "pod {:?} must run weft-init, then weft-proxy as a native sidecar, once: init {init:?}, \
         containers {containers:?}",
        pod.metadata.name
    );
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "weft-proxy"))
        .and_then(|c| c.restart_policy.clone());
    anyhow::ensure!(
        restart_policy.as_deref() == Some("Always"),
        "weft-proxy must have restartPolicy Always, got {restart_policy:?}"
    );
    Ok(())
}

/// The CRDs in the YAML files of `dir` (one CRD per file), with their names.
fn read_crds(dir: &Path) -> Result<Vec<(String, CustomResourceDefinition)>> {
    let mut paths = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut crds = vec![];
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let mut crd: CustomResourceDefinition =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        // The API server owns the status (the Gateway API files carry an empty one).
        crd.status = None;
        let name = crd
            .metadata
            .name
            .clone()
            .with_context(|| format!("{} has no name", path.display()))?;
        crds.push((name, crd));
    }
    Ok(crds)
}

/// The policy CRDs in `charts/weft/crds/`, with their names.
fn chart_crds() -> Result<Vec<(String, CustomResourceDefinition)>> {
    read_crds(&crate::repo_root().join("charts/weft/crds"))
}

/// The directory `bin/gateway-api-crds` prints: the Gateway API standard CRDs of the pinned
/// release (fetched from its Go module on the machine's first run, then cached).
pub fn gateway_api_crds_dir() -> Result<PathBuf> {
    let script = crate::repo_root().join("bin/gateway-api-crds");
    let output = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed ({}): the Gateway API CRDs are needed before the controller starts",
        script.display(),
        output.status
    );
    let dir = String::from_utf8(output.stdout)?.trim().to_string();
    anyhow::ensure!(!dir.is_empty(), "{} printed no directory", script.display());
    Ok(PathBuf::from(dir))
}

/// The Gateway API CRDs Weft needs installed (the standard channel: HTTPRoute and its siblings).
fn gateway_api_crds() -> Result<Vec<(String, CustomResourceDefinition)>> {
    read_crds(&gateway_api_crds_dir()?)
}

/// `v1.2.1` in the `gateway.networking.k8s.io/bundle-version` annotation, as numbers.
fn bundle_version(crd: &CustomResourceDefinition) -> Option<Vec<u64>> {
    let version = crd
        .metadata
        .annotations
        .as_ref()?
        .get("gateway.networking.k8s.io/bundle-version")?;
    version
        .trim_start_matches('v')
        .split(['.', '-'])
        .take(3)
        .map(|n| n.parse().ok())
        .collect()
}

/// Whether a Gateway API CRD already in the cluster is to be left as it is: it is the pinned
/// release or a newer one (which other users of the cluster may depend on; the tests need only
/// what the pinned release serves).
fn keep_installed(pinned: &CustomResourceDefinition, live: &CustomResourceDefinition) -> bool {
    match (bundle_version(pinned), bundle_version(live)) {
        (Some(pinned), Some(live)) => live >= pinned,
        _ => false,
    }
}

/// Server-side applies each CRD, then waits until every one is established.
async fn apply_crds(
    api: &Api<CustomResourceDefinition>,
    crds: &[(String, CustomResourceDefinition)],
) -> Result<()> {
    for (name, crd) in crds {
        api.patch(
            name,
            &PatchParams::apply(crate::webhooks::FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
    }
    wait_established(api, crds.iter().map(|(name, _)| name)).await
}

async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    names: impl IntoIterator<Item = &String>,
) -> Result<()> {
    for name in names {
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .with_context(|| format!("CRD {name} was not established within 30s"))??;
    }
    Ok(())
}

/// Installs the Gateway API standard CRDs (`bin/gateway-api-crds`), which the controller needs
/// before it starts (it watches HTTPRoutes), and waits until they are established. A CRD of the
/// pinned release or a newer one that is installed already is left as it is.
///
/// Nothing deletes them again: they are cluster-wide and shared by every suite and script that
/// uses the cluster (`bin/chart-check`, the node suite, another run of this one), so removing them
/// at one suite's end would pull them from under the others.
pub async fn install_gateway_api_crds(client: &kube::Client) -> Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut apply = vec![];
    let mut names = vec![];
    for (name, crd) in gateway_api_crds()? {
        match api.get_opt(&name).await? {
            Some(live) if keep_installed(&crd, &live) => {}
            _ => apply.push((name.clone(), crd)),
        }
        names.push(name);
    }
    apply_crds(&api, &apply).await?;
    wait_established(&api, &names).await
}

/// Deletes the Gateway API CRDs of the pinned release (and with them every HTTPRoute) and waits
/// until they are gone: for the tests that prove Weft works without them, on the suite's own local
/// cluster only (see [`install_gateway_api_crds`] for why nothing else removes them).
pub async fn delete_gateway_api_crds(client: &kube::Client) -> Result<()> {
    let names: Vec<String> = gateway_api_crds()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    delete_crds_named(client, &names).await
}

/// Installs the Gateway API CRDs (see [`install_gateway_api_crds`]) and the policy CRDs from
/// `charts/weft/crds/`, and waits until they are established.
pub async fn install_crds(client: &kube::Client) -> Result<()> {
    install_gateway_api_crds(client).await?;
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    apply_crds(&api, &chart_crds()?).await
}

/// Deletes the policy CRDs (and with them every Server and ServerAuthorization) and waits until
/// they are gone. The Gateway API CRDs stay (see [`install_gateway_api_crds`]).
pub async fn delete_crds(client: &kube::Client) -> Result<()> {
    let names: Vec<String> = chart_crds()?.into_iter().map(|(name, _)| name).collect();
    delete_crds_named(client, &names).await
}

/// Deletes the CRDs `names` (those not installed are skipped) and waits until they are gone.
async fn delete_crds_named(client: &kube::Client, names: &[String]) -> Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for name in names {
        match api.delete(name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error).with_context(|| format!("deleting CRD {name}")),
        }
    }
    // The API server's CRD finalizer removes a CRD once its instances are gone; it retries a
    // failed step with a growing delay, which on a loaded machine has taken more than a minute.
    let started = std::time::Instant::now();
    for name in names {
        while let Some(crd) = api.get_opt(name).await? {
            anyhow::ensure!(
                started.elapsed() < CRD_DELETION_WAIT,
                "CRD {name} was not deleted within {CRD_DELETION_WAIT:?}; it is still {}",
                crd_state(&crd)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("CRDs deleted in {:?}", started.elapsed());
    Ok(())
}

/// How long a test waits for deleted CRDs to go.
const CRD_DELETION_WAIT: Duration = Duration::from_secs(180);

/// A CRD's deletion timestamp, finalizers and status conditions, for an error message.
fn crd_state(crd: &CustomResourceDefinition) -> String {
    let conditions: Vec<String> = crd
        .status
        .iter()
        .flat_map(|status| status.conditions.iter().flatten())
        .map(|c| {
            format!(
                "{}={} ({}: {})",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("-")
            )
        })
        .collect();
    format!(
        "deletionTimestamp={:?} finalizers={:?} conditions=[{}]",
        crd.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        crd.metadata.finalizers.as_deref().unwrap_or_default(),
        conditions.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_bundle_version(version: &str) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.metadata.annotations = Some(to_map(&[(
            "gateway.networking.k8s.io/bundle-version",
            version,
        )]));
        crd
    }

    #[test]
    fn the_gateway_api_crds_parse_and_serve_httproutes_v1() {
        let crds = gateway_api_crds().unwrap();
        let (_, httproutes) = crds
            .iter()
            .find(|(name, _)| name == "httproutes.gateway.networking.k8s.io")
            .expect("the standard channel has HTTPRoute");
        assert!(httproutes
            .spec
            .versions
            .iter()
            .any(|v| v.name == "v1" && v.served));
        assert!(crds.iter().all(|(_, crd)| crd.status.is_none()));
        assert!(bundle_version(httproutes).is_some());
    }

    #[test]
    fn only_the_pinned_release_or_a_newer_one_is_kept() {
        let pinned = with_bundle_version("v1.2.1");
        assert!(keep_installed(&pinned, &with_bundle_version("v1.2.1")));
        assert!(keep_installed(&pinned, &with_bundle_version("v1.3.0")));
        assert!(keep_installed(&pinned, &with_bundle_version("v1.10.0")));
        assert!(!keep_installed(&pinned, &with_bundle_version("v1.1.0")));
        assert!(!keep_installed(&pinned, &with_bundle_version("v1.2.0")));
        assert!(!keep_installed(&pinned, &with_bundle_version("garbage")));
        assert!(!keep_installed(
            &pinned,
            &CustomResourceDefinition::default()
        ));
    }
}
