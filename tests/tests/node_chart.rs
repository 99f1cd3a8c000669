//! The chart running for real: the controller as a pod on the node, its probes, its mounted
//! Secret, the API server calling the webhooks through the Service, and the HA values.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::{
    api::{
        admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
        core::v1::{Pod, Secret},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{Api, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use std::{net::SocketAddr, os::unix::fs::MetadataExt, time::Duration};
use weft_e2e::{
    controller::https_post,
    mesh::run_web_in_injected_namespace,
    node::{self, controller_pods, RELEASE_NAMESPACE},
    resources, weft_cli,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "chart::installs_and_meshes_without_the_gateway_api_crds",
        installs_and_meshes_without_the_gateway_api_crds,
    ),
    (
        "chart::controller_runs_as_non_root_pod_with_probes_and_read_only_secret",
        controller_runs_as_non_root_pod_with_probes_and_read_only_secret,
    ),
    (
        "chart::api_server_calls_the_webhooks_through_the_service",
        api_server_calls_the_webhooks_through_the_service,
    ),
];

/// Run after every other test: it reinstalls the release (three replicas, then back to one).
pub const LAST: &[(&str, crate::TestFn)] = &[(
    "chart::ha_values_run_three_replicas_that_all_serve",
    ha_values_run_three_replicas_that_all_serve,
)];

const CONTROLLER_SELECTOR: &str = "app.kubernetes.io/component=controller";
const HTTPROUTE_CRD: &str = "httproutes.gateway.networking.k8s.io";
const TLS_SECRET: &str = "weft-webhook-tls";

/// The harness installed the chart with `helm upgrade --install --wait` on a cluster without the
/// Gateway API CRDs: the controller became ready, a pod in an injected namespace runs meshed
/// (its proxy certified and served its policy), and `weft check` warns about the CRDs without
/// failing. Then the CRDs are installed and the controller starts watching HTTPRoutes by itself.
fn installs_and_meshes_without_the_gateway_api_crds(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        ensure!(
            crds.get_opt(HTTPROUTE_CRD).await?.is_none(),
            "the harness installs the chart before the Gateway API CRDs"
        );
        node::wait_deployment_available(
            &client,
            RELEASE_NAMESPACE,
            node::RELEASE,
            Duration::from_secs(60),
        )
        .await?;

        let (ns, pod) = run_web_in_injected_namespace(
            &h.cluster,
            &client,
            "no-gateway-api",
            &h.images.test_app,
            &[],
        )
        .await?;
        resources::ensure_injected_natively(&pod)?;

        let run = weft_cli::check(&weft_cli::build()?, &h.cluster.kubeconfig, &[])?;
        ensure!(
            run.code == Some(0)
                && run.has_line(
                    "[warn]",
                    &format!("CRD {HTTPROUTE_CRD} (Gateway API) is not installed")
                )
                && run.has_line("[ok]", "Deployment weft/weft"),
            "weft check must pass with a warning about the Gateway API CRD (exit {:?}):\n{}",
            run.code,
            run.stdout
        );

        node::ensure_gateway_api_watched(&h.cluster).await?;
        let logs = node::kubectl(
            &h.cluster,
            &[
                "-n",
                RELEASE_NAMESPACE,
                "logs",
                "-l",
                CONTROLLER_SELECTOR,
                "--tail=-1",
            ],
        )?;
        ensure!(
            logs.contains(&format!("The CRD {HTTPROUTE_CRD} is installed now")),
            "the controller must say when it starts watching HTTPRoutes:\n{logs}"
        );
        resources::delete_namespace(&client, &ns).await
    })
}

fn controller_runs_as_non_root_pod_with_probes_and_read_only_secret(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let pods = controller_pods(&client).await?;
        ensure!(
            pods.len() == 1,
            "one controller pod expected, got {}",
            pods.len()
        );
        let pod = &pods[0];
        ensure!(
            node::pod_ready(pod),
            "the controller pod is not Ready: {:?}",
            pod.status
        );
        ensure!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("weft-node"),
            "the controller pod is not on the node"
        );
        // The image is the one bin/images built and pushed to the node's registry.
        let status = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .context("no container status")?;
        ensure!(
            status.image == h.images.controller || status.image_id.contains("weft-controller"),
            "the container runs {} ({}), not {}",
            status.image,
            status.image_id,
            h.images.controller
        );
        // The probes are the chart's (/live and /ready on the admin port), and they pass: the pod
        // is Ready (readiness) and has not been restarted (liveness, startup).
        let container = &pod.spec.as_ref().context("no spec")?.containers[0];
        let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|g| g.path.clone())
        };
        ensure!(probe_path(&container.liveness_probe).as_deref() == Some("/live"));
        ensure!(probe_path(&container.readiness_probe).as_deref() == Some("/ready"));
        ensure!(
            status.restart_count == 0,
            "the controller restarted {} times",
            status.restart_count
        );

        // The process: uid/gid 65532 and a read-only root filesystem, seen from the host.
        let container_id = status.container_id.as_deref().context("no container id")?;
        let pid = node::container_pid(&h.cluster, container_id)?;
        let (uid, gid) = node::process_ids(pid)?;
        ensure!(
            (uid, gid) == (65532, 65532),
            "the controller runs as {uid}:{gid}, not 65532:65532"
        );
        ensure!(
            node::root_is_read_only(pid)?,
            "the controller's root filesystem is writable"
        );

        // The Secret, as the kubelet mounted it: mode 0440, group 65532 (fsGroup), so the non-root
        // process can read the key and nobody else can.
        let uid_of_pod = pod.metadata.uid.as_deref().context("pod without uid")?;
        for key in ["tls.key", "tls.crt"] {
            let path = node::secret_volume_file(&h.cluster, uid_of_pod, "webhook-tls", key)?;
            let meta = std::fs::metadata(&path)?;
            ensure!(
                meta.mode() & 0o777 == 0o440,
                "{} has mode {:o}, expected 440",
                path.display(),
                meta.mode() & 0o777
            );
            ensure!(
                meta.gid() == 65532,
                "{} has group {}, expected 65532",
                path.display(),
                meta.gid()
            );
        }
        // And it did read them: the webhook answers with that certificate (next test) and the
        // log says so.
        let logs = node::kubectl(
            &h.cluster,
            &[
                "-n",
                RELEASE_NAMESPACE,
                "logs",
                pod.metadata.name.as_deref().unwrap_or_default(),
            ],
        )?;
        ensure!(
            logs.contains("Serving admission webhooks on HTTPS"),
            "the controller's log does not say it serves the webhooks:\n{logs}"
        );
        Ok(())
    })
}

fn api_server_calls_the_webhooks_through_the_service(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        // The registrations name the Service, not a URL.
        let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get("weft-proxy-injector")
            .await?;
        let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get("weft-policy-validator")
            .await?;
        for config in mutating
            .webhooks
            .iter()
            .flatten()
            .map(|w| &w.client_config)
            .chain(
                validating
                    .webhooks
                    .iter()
                    .flatten()
                    .map(|w| &w.client_config),
            )
        {
            ensure!(config.url.is_none(), "a webhook uses a URL: {config:?}");
            ensure!(
                config.service.is_some(),
                "a webhook names no Service: {config:?}"
            );
        }

        // A pod in an enabled namespace is stored injected: the API server called /inject
        // through the Service.
        let ns = resources::namespace(
            &client,
            "node-inject",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let stored = pods
            .create(&PostParams::default(), &resources::pod("web", &[]))
            .await
            .context("creating a pod in an enabled namespace")?;
        resources::ensure_injected_natively(&stored)?;

        // A malformed Server is refused by /validate through the Service, naming the field.
        let gvk = GroupVersionKind::gvk("policy.weft.dev", "v1beta1", "Server");
        let servers: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk));
        let server: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "policy.weft.dev/v1beta1",
            "kind": "Server",
            "metadata": {"name": "bad"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "Not_A_Port_Name"},
        }))?;
        match servers.create(&PostParams::default(), &server).await {
            Err(kube::Error::Api(status)) => ensure!(
                status.message.contains("spec.port")
                    && status.message.contains("denied the request"),
                "the refusal must come from Weft's webhook and name spec.port: {}",
                status.message
            ),
            other => anyhow::bail!("a Server with a bad port name was not refused: {other:?}"),
        }
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

fn ha_values_run_three_replicas_that_all_serve(h: &Harness) -> Result<()> {
    let values = weft_e2e::repo_root().join("charts/weft/values-ha.yaml");
    let values = values.display().to_string();
    // One node: the test overrides the HA values' required anti-affinity with preferred.
    let result = (|| {
        node::install_chart(
            &h.cluster,
            &h.images,
            &["-f", &values, "--set", "podAntiAffinity=preferred"],
        )?;
        block_on(async {
            let client = h.cluster.client().await?;
            node::wait_deployment_available(
                &client,
                RELEASE_NAMESPACE,
                node::RELEASE,
                Duration::from_secs(180),
            )
            .await?;
            let pods = node::wait_for(
                "three ready controller pods",
                Duration::from_secs(60),
                || async {
                    let pods = controller_pods(&client).await?;
                    Ok((pods.len() == 3 && pods.iter().all(node::pod_ready)).then_some(pods))
                },
            )
            .await?;
            // Every replica answers an admission request itself (straight to its pod IP, with the
            // certificate the API server verifies for the Service name).
            let secret = Api::<Secret>::namespaced(client.clone(), RELEASE_NAMESPACE)
                .get(TLS_SECRET)
                .await?;
            let ca = secret
                .data
                .as_ref()
                .and_then(|d| d.get("ca.crt"))
                .context("the webhook Secret has no ca.crt")?;
            let tls = client_config(&ca.0)?;
            for pod in &pods {
                let ip = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .context("pod without IP")?;
                let addr = SocketAddr::new(ip.parse()?, 9443);
                let (status, body) = https_post(
                    addr,
                    tls.clone(),
                    "weft.weft.svc",
                    "/inject",
                    resources::pod_review("default"),
                )
                .await
                .with_context(|| format!("POST /inject to replica {addr}"))?;
                ensure!(
                    status == 200,
                    "replica {addr} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                let review: serde_json::Value = serde_json::from_slice(&body)?;
                ensure!(
                    review["response"]["uid"] == "e2e-probe",
                    "replica {addr} answered no review: {review}"
                );
            }
            Ok(())
        })
    })();
    // Back to the default values for the tests after this one, whatever happened.
    let restored = node::install_chart(&h.cluster, &h.images, &[]);
    result.and(restored)
}

fn client_config(ca_pem: &[u8]) -> Result<std::sync::Arc<tokio_rustls::rustls::ClientConfig>> {
    use tokio_rustls::rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer},
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    Ok(std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
