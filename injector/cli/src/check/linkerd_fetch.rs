//! The I/O of `weft check --linkerd`: reads namespaces, pods, Services and Linkerd's resources,
//! and hands them to the pure checks of [`super::linkerd`].

use super::{
    fetch::{connected, describe},
    linkerd::{self, ListedPod, ResourceCount, KINDS},
    CheckArgs, Group,
};
use k8s_openapi::{
    api::core::v1::{Namespace, Pod, Service},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams},
    ResourceExt,
};
use std::collections::BTreeMap;
use weft_injector::{config::ProxyArgs, Injector};

/// Runs the Linkerd-to-Weft checks against the cluster `args` name.
pub async fn run(args: &CheckArgs) -> Vec<Group> {
    let (client, mut groups) = match connected(&args.cluster).await {
        Ok(connected) => connected,
        Err(groups) => return groups,
    };

    let failed = |what: &str, error: kube::Error| {
        vec![super::Check::fail(
            format!("cannot list {what}: {}", describe(error)),
            "check that the kubeconfig's user may list namespaces, pods and Services",
        )]
    };
    let namespaces = match Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .map(|ns| (ns.name_any(), ns.metadata.annotations.unwrap_or_default()))
            .collect::<BTreeMap<_, _>>(),
        Err(error) => {
            groups.push(Group {
                title: "Pods",
                checks: failed("namespaces", error),
            });
            BTreeMap::new()
        }
    };
    let injector = Injector::new(
        ProxyArgs::default()
            .to_config(None)
            .expect("the default proxy flags are valid"),
    );
    let pods = match Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => linkerd::pods(
            &injector,
            &list.items.iter().map(listed).collect::<Vec<_>>(),
            &namespaces,
        ),
        Err(error) => failed("pods", error),
    };
    groups.push(Group {
        title: "Pods (as Weft's webhook would treat them)",
        checks: pods,
    });

    let services = match Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => linkerd::services(
            &list
                .items
                .into_iter()
                .map(|s| {
                    (
                        s.namespace().unwrap_or_default(),
                        s.name_any(),
                        s.metadata.annotations.unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        Err(error) => failed("Services", error),
    };
    groups.push(Group {
        title: "Services",
        checks: services,
    });

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let mut counts = Vec::new();
    for (crd, kind, instead, security) in KINDS {
        counts.push(
            count(&client, &crds, crd)
                .await
                .map(|count| ResourceCount {
                    kind,
                    count,
                    instead,
                    security: *security,
                })
                .map_err(|e| format!("{kind}: {e}")),
        );
    }
    groups.push(Group {
        title: "Linkerd's resources",
        checks: linkerd::resources(&counts),
    });
    groups
}

/// How many objects of the CRD `name` the cluster holds (`None`: not installed), listed at its
/// storage version.
async fn count(
    client: &kube::Client,
    crds: &Api<CustomResourceDefinition>,
    name: &str,
) -> Result<Option<usize>, String> {
    let Some(crd) = crds.get_opt(name).await.map_err(describe)? else {
        return Ok(None);
    };
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .or_else(|| crd.spec.versions.iter().find(|v| v.served))
        .ok_or_else(|| format!("the CRD {name} serves no version"))?;
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    let list = Api::<DynamicObject>::all_with(client.clone(), &resource)
        .list_metadata(&ListParams::default())
        .await
        .map_err(describe)?;
    Ok(Some(list.items.len()))
}

/// A pod with its owner's name: a ReplicaSet's pods are reported under their Deployment (the
/// ReplicaSet's name without its hash).
fn listed(pod: &Pod) -> ListedPod {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| match o.kind.as_str() {
            "ReplicaSet" => match o.name.rsplit_once('-') {
                Some((deployment, _hash)) => format!("Deployment/{deployment}"),
                None => format!("ReplicaSet/{}", o.name),
            },
            kind => format!("{kind}/{}", o.name),
        })
        .unwrap_or_else(|| format!("pod/{}", pod.name_any()));
    ListedPod {
        namespace: pod.namespace().unwrap_or_default(),
        owner,
        pod: serde_json::to_value(pod).expect("a Pod always serializes"),
    }
}
