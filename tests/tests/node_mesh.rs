//! The data plane for real: linkerd2-proxy, built here from source, injected by Weft's webhook,
//! certified by Weft's identity service and enforcing the inbound policy Weft serves it, in pods
//! the kubelet runs with containerd and runc. The proxy is the judge: nothing here imitates it.
//!
//! Clients are unmeshed: the host's `curl` run inside a plain pod's network namespace
//! (`nsenter -n`), so each request leaves from that pod's address as any pod's would.

use crate::{block_on, Harness};
use anyhow::{ensure, Result};
use kube::api::{Api, DeleteParams, DynamicObject};
use std::process::Command;
use weft_e2e::{
    mesh::{
        app_pod, create_policy, http_get_from, pid_of, pod_ip, policy_resource, refused, run_pod,
        run_web_in_injected_namespace, service_account, wait_for_answer,
    },
    node, resources,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "mesh::injected_pod_is_ready_with_an_identity_weft_issued",
        injected_pod_is_ready_with_an_identity_weft_issued,
    ),
    (
        "mesh::the_proxy_allows_and_refuses_as_the_policy_says",
        the_proxy_allows_and_refuses_as_the_policy_says,
    ),
];

fn injected_pod_is_ready_with_an_identity_weft_issued(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let (ns, pod) = run_web_in_injected_namespace(
            &h.cluster,
            &client,
            "mesh-identity",
            &h.images.test_app,
            &[("config.weft.dev/proxy-log-level", "warn,linkerd=info")],
        )
        .await?;
        resources::ensure_injected_natively(&pod)?;
        // Ready means certified: the proxy's /ready waits for its identity.
        let identity = format!("web.{ns}.serviceaccount.identity.weft.cluster.local");
        let logs = node::kubectl(&h.cluster, &["-n", &ns, "logs", "web", "-c", "weft-proxy"])?;
        ensure!(
            logs.contains("Certified identity") && logs.contains(&identity),
            "the proxy's log does not show the identity {identity} certified:\n{logs}"
        );
        // The init container's redirection is in the pod's network namespace.
        let pid = pid_of(&h.cluster, &pod, "app")?;
        let rules = node::run(
            Command::new("nsenter")
                .args(["-t", &pid.to_string(), "-n", "--"])
                .args(["iptables-nft-save", "-t", "nat"]),
        )?;
        let rules = String::from_utf8_lossy(&rules.stdout);
        ensure!(
            rules.contains("PROXY_INIT_REDIRECT") && rules.contains("--to-ports 4143"),
            "the pod's nat table lacks the proxy-init redirection:\n{rules}"
        );
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

fn the_proxy_allows_and_refuses_as_the_policy_says(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "mesh-policy",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        let plain = resources::namespace(&client, "mesh-client", &[], &[]).await?;
        service_account(&client, &ns, "web").await?;
        let server = run_pod(
            &h.cluster,
            &client,
            &ns,
            &app_pod(
                "web",
                &h.images.test_app,
                "web",
                &[("config.weft.dev/default-inbound-policy", "deny")],
            ),
        )
        .await?;
        let client_pod = run_pod(
            &h.cluster,
            &client,
            &plain,
            &app_pod("client", &h.images.test_app, "default", &[]),
        )
        .await?;
        let client_pid = pid_of(&h.cluster, &client_pod, "app")?;
        let url = format!("http://{}:8080/", pod_ip(&server)?);

        // No Server selects the port and the default policy is deny: refused, although the
        // kubelet's probes of /healthz pass (the pod is Ready).
        let answer = http_get_from(client_pid, &url)?;
        ensure!(
            refused(answer),
            "under the deny default policy the request must be refused, got {answer:?}"
        );

        // A Server and a ServerAuthorization admitting unauthenticated clients of the pod
        // network: allowed.
        create_policy(
            &client,
            &ns,
            "Server",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "Server",
                "metadata": {"name": "web-http"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "port": "http"},
            }),
        )
        .await?;
        create_policy(
            &client,
            &ns,
            "ServerAuthorization",
            serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "ServerAuthorization",
                "metadata": {"name": "pod-network"},
                "spec": {
                    "server": {"name": "web-http"},
                    "client": {"unauthenticated": true, "networks": [{"cidr": "10.251.0.0/24"}]},
                },
            }),
        )
        .await?;
        let allowed_after =
            wait_for_answer(client_pid, &url, |a| a == Some(200), "authorized").await?;
        eprintln!("mesh: allowed {allowed_after:?} after the ServerAuthorization was created");

        // `weft policy` shows what the proxy got: it finds the controller, port-forwards to it
        // and verifies its identity against the trust anchors.
        let weft = weft_e2e::weft_cli::build()?;
        let kubeconfig = format!("--kubeconfig={}", h.cluster.kubeconfig.display());
        let shown =
            weft_e2e::weft_cli::policy(&weft, &[&format!("{ns}/web"), "8080", &kubeconfig])?;
        ensure!(
            shown.code == Some(0)
                && shown.stdout.contains("name: web-http")
                && shown.stdout.contains("pod-network")
                && shown.stdout.contains("10.251.0.0/24"),
            "weft policy must show the Server and its authorization (exit {:?}):\n{}{}",
            shown.code,
            shown.stdout,
            shown.stderr
        );

        // Deleting the authorization leaves the Server admitting nobody: refused again.
        let authorizations = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &ns,
            &policy_resource("ServerAuthorization"),
        );
        authorizations
            .delete("pod-network", &DeleteParams::default())
            .await?;
        let refused_after = wait_for_answer(
            client_pid,
            &url,
            refused,
            "the ServerAuthorization was deleted",
        )
        .await?;
        eprintln!("mesh: refused {refused_after:?} after the ServerAuthorization was deleted");

        let _ = resources::delete_namespace(&client, &ns).await;
        let _ = resources::delete_namespace(&client, &plain).await;
        Ok(())
    })
}
