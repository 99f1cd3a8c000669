//! Namespaces, pods and CRDs the tests create.

use anyhow::{Context, Result};
use k8s_openapi::{
    api::core::v1::{Namespace, Pod, ServiceAccount},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::{collections::BTreeMap, time::Duration};

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

/// The policy CRDs in `charts/weft/crds/`, with their names.
fn chart_crds() -> Result<Vec<(String, CustomResourceDefinition)>> {
    let dir = crate::repo_root().join("charts/weft/crds");
    let mut crds = vec![];
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let crd: CustomResourceDefinition =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let name = crd
            .metadata
            .name
            .clone()
            .with_context(|| format!("{} has no name", path.display()))?;
        crds.push((name, crd));
    }
    Ok(crds)
}

/// Installs the policy CRDs from `charts/weft/crds/` and waits until they are established.
pub async fn install_crds(client: &kube::Client) -> Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut names = vec![];
    for (name, crd) in chart_crds()? {
        api.patch(
            &name,
            &PatchParams::apply(crate::webhooks::FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        names.push(name);
    }
    for name in names {
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .with_context(|| format!("CRD {name} was not established within 30s"))??;
    }
    Ok(())
}

/// Deletes the policy CRDs (and with them every Server and ServerAuthorization) and waits until
/// they are gone.
pub async fn delete_crds(client: &kube::Client) -> Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let names: Vec<String> = chart_crds()?.into_iter().map(|(name, _)| name).collect();
    for name in &names {
        match api.delete(name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error).with_context(|| format!("deleting CRD {name}")),
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for name in &names {
        while api.get_opt(name).await?.is_some() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "CRD {name} was not deleted within 60s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
