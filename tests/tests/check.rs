//! `weft check` against the local control plane. There is no node, so no controller Deployment
//! runs: these tests prove what can be proved without one (the CRD comparison against what the
//! API server stores, failure lines with fixes, the exit code). The check of a real chart install
//! needs the node.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::{
    api::core::v1::{Pod, Service},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;
use weft_e2e::{resources, weft_cli};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "check::installed_crds_pass_and_a_missing_installation_fails",
        installed_crds_pass_and_a_missing_installation_fails,
    ),
    (
        "check::linkerd_lists_what_weft_would_serve_differently",
        linkerd_lists_what_weft_would_serve_differently,
    ),
];

fn installed_crds_pass_and_a_missing_installation_fails(h: &Harness) -> Result<()> {
    let weft = weft_cli::build()?;
    // The harness installed the CRDs (Weft's and the Gateway API's); nothing else of a chart
    // install exists under these names.
    let name = format!("weft-e2e-check-{}", weft_e2e::unique_suffix());
    let run = weft_cli::check(
        &weft,
        &h.cluster.kubeconfig,
        &["--namespace", &name, "--fullname", &name],
    )?;
    let report = &run.stdout;
    ensure!(
        run.code == Some(1),
        "exit code {:?}, want 1:\n{report}",
        run.code
    );
    for crd in [
        "servers.policy.weft.dev",
        "serverauthorizations.policy.weft.dev",
        "authorizationpolicies.policy.weft.dev",
        "meshtlsauthentications.policy.weft.dev",
        "networkauthentications.policy.weft.dev",
    ] {
        ensure!(
            run.has_line("[ok]", &format!("CRD {crd} is installed and current")),
            "the CRD as the API server stores it must match the generated one:\n{report}"
        );
    }
    // The harness installed the Gateway API CRDs too (the pinned release, or a newer one found).
    ensure!(
        report.lines().any(|line| line.starts_with("[ok]")
            && line.contains("CRD httproutes.gateway.networking.k8s.io (Gateway API")
            && line.ends_with("is installed and serves v1")),
        "the Gateway API's HTTPRoute CRD must pass:\n{report}"
    );
    ensure!(
        !run.has_line("[warn]", "httproutes"),
        "no warning about the installed Gateway API CRD:\n{report}"
    );
    ensure!(
        run.has_line("[ok]", "connected to https://"),
        "the connection line:\n{report}"
    );
    for missing in [
        format!("MutatingWebhookConfiguration {name}-proxy-injector does not exist"),
        format!("ValidatingWebhookConfiguration {name}-policy-validator does not exist"),
        format!("Deployment {name}/{name} (the controller) does not exist"),
        format!(
            "Secret {name}/{name}-webhook-tls (the webhook's serving certificate) does not exist"
        ),
        format!("ServiceAccount {name}/{name} may not: get pods"),
    ] {
        ensure!(
            run.has_line("[FAIL]", &missing),
            "no failure line {missing:?}:\n{report}"
        );
    }
    ensure!(
        report.contains(&format!(
            "fix: helm upgrade --install weft charts/weft --namespace {name} installs it"
        )),
        "each failure has a fix:\n{report}"
    );
    Ok(())
}

/// A pod as Linkerd's injector leaves it, with the user's `annotations`.
fn linkerd_meshed_pod(name: &str, annotations: serde_json::Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "initContainers": [{"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy-init:v2.4.9"}],
            "containers": [
                {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3",
                 "ports": [{"name": "linkerd-proxy", "containerPort": 4143}]},
                {"name": "app", "image": "example.com/app:1", "ports": [{"containerPort": 8080}]},
            ],
        },
    }))?)
}

/// A cluster as Linkerd users have it (a namespace annotated for Linkerd, pods its injector
/// meshed, a Service with a port name as opaque port, a `policy.linkerd.io` Server), exempt from
/// Weft's webhooks: `weft check --linkerd` lists, with fixes, what Weft would refuse, ignore or
/// not read, and exits 1.
fn linkerd_lists_what_weft_would_serve_differently(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "e2e-l5d",
            &[("linkerd.io/inject", "enabled")],
            &[("weft.dev/admission-webhooks", "disabled")],
        )
        .await?;
        resources::default_service_account(&client, &ns).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let post = PostParams::default();
        for (name, annotations) in [
            ("web", json!({})),
            ("ingress", json!({"linkerd.io/inject": "ingress"})),
            ("db", json!({"config.linkerd.io/proxy-await": "enabled"})),
        ] {
            pods.create(&post, &linkerd_meshed_pod(name, annotations)?)
                .await
                .with_context(|| format!("creating pod {name}"))?;
        }
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "annotations": {"config.linkerd.io/opaque-ports": "mysql"}},
            "spec": {"ports": [{"name": "mysql", "port": 3306}]},
        }))?;
        Api::<Service>::namespaced(client.clone(), &ns)
            .create(&post, &service)
            .await?;
        // Linkerd's Server CRD (its served version, a permissive schema) and one Server.
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "servers.policy.linkerd.io"},
            "spec": {
                "group": "policy.linkerd.io",
                "names": {"kind": "Server", "plural": "servers", "singular": "server", "listKind": "ServerList"},
                "scope": "Namespaced",
                "versions": [{"name": "v1beta3", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
            },
        }))?;
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        crds.create(&post, &crd).await?;
        let gvk = GroupVersionKind::gvk("policy.linkerd.io", "v1beta3", "Server");
        let servers = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &ns,
            &ApiResource::from_gvk_with_plural(&gvk, "servers"),
        );
        let server: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": "web-http"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080, "proxyProtocol": "HTTP/1"},
        }))?;
        let created = weft_e2e::node::wait_for(
            "the new CRD to serve Servers",
            std::time::Duration::from_secs(20),
            || async { Ok(servers.create(&post, &server).await.ok()) },
        )
        .await;

        let run = weft_cli::check(&weft_cli::build()?, &h.cluster.kubeconfig, &["--linkerd"]);
        let _ = crds
            .delete("servers.policy.linkerd.io", &Default::default())
            .await;
        let _ = resources::delete_namespace(&client, &ns).await;
        created?;
        let run = run?;
        let report = &run.stdout;
        ensure!(
            run.code == Some(1),
            "exit code {:?}, want 1:\n{report}",
            run.code
        );
        for (mark, line) in [
            (
                "[FAIL]",
                format!("{ns}/pod/ingress: Weft's webhook would refuse its pods: linkerd.io/inject: \"ingress\""),
            ),
            (
                "[warn]",
                format!("{ns}/pod/db: pod: config.linkerd.io/proxy-await is not supported by Weft"),
            ),
            (
                "[warn]",
                format!("Service {ns}/db: config.linkerd.io/opaque-ports: \"mysql\""),
            ),
            (
                "[FAIL]",
                "Server.policy.linkerd.io: 1 in the cluster, which Weft does not read".to_string(),
            ),
            (
                "[ok]",
                "ServiceProfile.linkerd.io: the CRD is not installed".to_string(),
            ),
        ] {
            ensure!(run.has_line(mark, &line), "no {mark} line {line:?}:\n{report}");
        }
        ensure!(
            !report.contains(&format!("{ns}/pod/web")),
            "a pod Weft would mesh the same way has no line:\n{report}"
        );
        Ok(())
    })
}
