//! Workloads on the real node: Deployments turned into pods by kube-controller-manager, admitted
//! through Weft's webhook, scheduled by kube-scheduler and run by the kubelet.

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::Pod};
use kube::api::{Api, PostParams};
use std::time::Duration;
use weft_e2e::{
    mesh::{create_service, run_web_in_injected_namespace, service},
    node,
    resources::{self, container_names},
};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "workloads::deployment_in_enabled_namespace_is_stored_injected_and_runs_meshed",
        deployment_in_enabled_namespace_is_stored_injected_and_runs_meshed,
    ),
    (
        "workloads::deployment_in_plain_namespace_runs_unchanged_and_logs",
        deployment_in_plain_namespace_runs_unchanged_and_logs,
    ),
    (
        "workloads::a_meshed_job_that_calls_out_at_once_completes",
        a_meshed_job_that_calls_out_at_once_completes,
    ),
];

/// A Deployment of the test app (BusyBox httpd on 8080) with a readiness probe.
fn deployment(name: &str, image: &str, replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "app",
                        "image": image,
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {
                            "httpGet": {"path": "/", "port": "http"},
                            "periodSeconds": 1,
                        },
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "allowPrivilegeEscalation": false,
                        },
                    }],
                },
            },
        },
    }))?)
}

fn deployment_in_enabled_namespace_is_stored_injected_and_runs_meshed(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "node-meshed",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(
                &PostParams::default(),
                &deployment("web", &h.images.test_app, 2)?,
            )
            .await?;
        // kube-controller-manager creates the pods (through the webhook), kube-scheduler binds
        // them to the node.
        let web_pods = || async {
            Api::<Pod>::namespaced(client.clone(), &ns)
                .list(&kube::api::ListParams::default().labels("app=web"))
                .await
                .map(|list| list.items)
        };
        let pods = node::wait_for(
            "two scheduled pods of the Deployment",
            Duration::from_secs(60),
            || async {
                let pods = web_pods().await?;
                let scheduled = pods.iter().all(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("weft-node")
                });
                Ok((pods.len() == 2 && scheduled).then_some(pods))
            },
        )
        .await?;
        for pod in &pods {
            resources::ensure_injected_natively(pod)?;
            let owner = pod
                .metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.first())
                .context("a Deployment's pod without an owner")?;
            ensure!(owner.kind == "ReplicaSet", "owner is {}", owner.kind);
        }
        // The kubelet runs them: proxy-init's rules, linkerd2-proxy certified by Weft (its
        // readiness waits for that), the app's probe through the proxy. Available means both
        // pods Ready, every container of each.
        node::wait_deployment_available(&client, &ns, "web", Duration::from_secs(120)).await?;
        for pod in web_pods().await? {
            // The app and the proxy (a native sidecar, among the init containers' statuses).
            let status = pod.status.as_ref();
            let statuses: Vec<_> = status
                .and_then(|s| s.container_statuses.clone())
                .into_iter()
                .flatten()
                .chain(
                    status
                        .and_then(|s| s.init_container_statuses.clone())
                        .into_iter()
                        .flatten()
                        .filter(|c| c.name == "weft-proxy"),
                )
                .collect();
            ensure!(
                statuses.len() == 2 && statuses.iter().all(|c| c.ready),
                "both containers of each meshed pod must be ready: {:?}",
                statuses
                    .iter()
                    .map(|c| (&c.name, c.ready))
                    .collect::<Vec<_>>()
            );
        }
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

fn deployment_in_plain_namespace_runs_unchanged_and_logs(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "node-plain", &[], &[]).await?;
        let created = deployment("web", &h.images.test_app, 1)?;
        let template =
            serde_json::to_value(&created.spec.as_ref().context("no spec")?.template.spec)?;
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &created)
            .await?;
        node::wait_deployment_available(&client, &ns, "web", Duration::from_secs(90)).await?;
        let pods = node::wait_pods(&client, &ns, "app=web", 1, Duration::from_secs(10)).await?;
        let pod = &pods[0];
        ensure!(node::pod_ready(pod), "the pod is not Ready");
        let (init, containers) = container_names(pod);
        ensure!(
            init.is_empty() && containers == ["app"],
            "a pod in a plain namespace must not be injected: init {init:?}, containers {containers:?}"
        );
        // Unchanged: the stored containers are the template's (defaults added by the API server
        // aside), and no Weft annotation was added.
        let stored = serde_json::to_value(&pod.spec.as_ref().context("no spec")?.containers[0])?;
        let wanted = &template["containers"][0];
        for key in ["name", "image", "securityContext"] {
            let (s, w) = (&stored[key], &wanted[key]);
            ensure!(s == w, "container field {key} changed: {s} != {w}");
        }
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        ensure!(
            !annotations.keys().any(|k| k.starts_with("weft.dev/")),
            "Weft annotations on a pod of a plain namespace: {annotations:?}"
        );
        // `kubectl logs` works: the API server reaches the kubelet, which authenticates it by its
        // client certificate and authorizes it with a SubjectAccessReview.
        let name = pod.metadata.name.as_deref().context("pod without a name")?;
        let logs = node::kubectl(&h.cluster, &["-n", &ns, "logs", name])?;
        ensure!(
            logs.contains("weft test app"),
            "kubectl logs did not return the app's output:\n{logs}"
        );
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

/// A Job in a meshed namespace, with the default settings, whose app needs the network at its
/// first instruction (a request to a meshed Service through its proxy), must complete: the proxy
/// is a native sidecar, so the kubelet starts the app only once the proxy is ready (its startup
/// probe is `/ready`, which waits for its identity) and stops the proxy once the app has exited.
/// With the proxy as a regular container (`--native-sidecar=false`), the app can start before the
/// proxy listens (its request is refused) and the pod never finishes, as the proxy keeps running.
fn a_meshed_job_that_calls_out_at_once_completes(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let (ns, _web) =
            run_web_in_injected_namespace(&h.cluster, &client, "node-job", &h.images.test_app, &[])
                .await?;
        let service_ip = create_service(&client, &ns, &service("web", 80)).await?;
        let request = format!(
            "answer=$( (printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 10) | busybox nc -w 10 {service_ip} 80); \
             echo \"$answer\"; echo \"$answer\" | busybox grep -q 'weft test app'"
        );
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "call-out"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "app",
                            "image": &h.images.test_app,
                            // The first instruction: one request, no retry. (BusyBox's
                            // static wget crashes; its nc does not, but it gives up at the
                            // end of its input, so the input stays open until the answer.)
                            "command": ["sh", "-c", &request],
                            "securityContext": {
                                "runAsNonRoot": true,
                                "runAsUser": 65532,
                                "allowPrivilegeEscalation": false,
                            },
                        }],
                    },
                },
            },
        }))?;
        let jobs = Api::<Job>::namespaced(client.clone(), &ns);
        jobs.create(&PostParams::default(), &job).await?;
        let started = std::time::Instant::now();
        let outcome = node::wait_for("the Job to finish", Duration::from_secs(120), || async {
            let job = jobs.get("call-out").await?;
            let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
            Ok(conditions
                .iter()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .map(|c| c.type_.clone()))
        })
        .await;
        let pods =
            node::wait_pods(&client, &ns, "job-name=call-out", 1, Duration::from_secs(5)).await?;
        let pod = &pods[0];
        let logs = node::kubectl(
            &h.cluster,
            &[
                "-n",
                &ns,
                "logs",
                pod.metadata.name.as_deref().unwrap_or_default(),
                "-c",
                "app",
            ],
        )
        .unwrap_or_else(|e| format!("(no log: {e:#})"));
        let outcome = outcome.with_context(|| format!("app log:\n{logs}"))?;
        ensure!(
            outcome == "Complete",
            "the Job {outcome}; the app's first request failed:\n{logs}"
        );
        ensure!(
            logs.contains("weft test app"),
            "the app's request must have reached the meshed web pod:\n{logs}"
        );
        resources::ensure_injected_natively(pod)?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        eprintln!(
            "workloads: the meshed Job completed {:.1} s after it was created (pod phase {phase:?})",
            started.elapsed().as_secs_f64()
        );
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}
