//! Policy resources through the real API server: the validating webhook and the policy API fed
//! by real watches.

use crate::{block_on, Harness};
use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Api, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use std::time::{Duration, Instant};
use weft_e2e::{controller::http_get, resources};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "policy::invalid_server_is_refused_with_weft_message",
        invalid_server_is_refused_with_weft_message,
    ),
    (
        "policy::policy_api_reflects_a_new_server_within_one_second",
        policy_api_reflects_a_new_server_within_one_second,
    ),
];

fn api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("policy.weft.dev", "v1beta1", kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

fn server(name: &str, port: serde_json::Value, protocol: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "port": port,
            "proxyProtocol": protocol,
        },
    }))?)
}

/// Creates a Server selecting `app: web` pods on `port` (a name or number).
pub async fn create_server(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    port: &str,
    protocol: &str,
) -> Result<()> {
    let port = port
        .parse::<u16>()
        .map(serde_json::Value::from)
        .unwrap_or_else(|_| serde_json::Value::from(port));
    api(client, namespace, "Server")
        .create(&PostParams::default(), &server(name, port, protocol)?)
        .await
        .with_context(|| format!("creating Server {namespace}/{name}"))?;
    Ok(())
}

fn invalid_server_is_refused_with_weft_message(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy-bad", &[], &[]).await?;
        let servers = api(&client, &ns, "Server");
        let post = PostParams::default();

        let cases = [
            (
                server("bad-port", serde_json::json!(70000), "HTTP/1")?,
                "spec.port",
            ),
            (
                server("bad-name", serde_json::json!("Not_A_Port_Name"), "HTTP/1")?,
                "spec.port",
            ),
        ];
        for (object, field) in cases {
            let name = object.metadata.name.clone().unwrap_or_default();
            match servers.create(&post, &object).await {
                Ok(_) => bail!("Server {name} must be refused"),
                Err(kube::Error::Api(status)) => ensure!(
                    status.message.contains(field) && status.message.contains("denied the request"),
                    "the refusal of {name} must come from Weft's webhook and name {field}: {}",
                    status.message
                ),
                Err(other) => return Err(other.into()),
            }
        }

        // A ServerAuthorization that is both unauthenticated and meshTLS.
        let authz: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "policy.weft.dev/v1beta1",
            "kind": "ServerAuthorization",
            "metadata": {"name": "both"},
            "spec": {
                "server": {"name": "web"},
                "client": {"unauthenticated": true, "meshTLS": {"identities": ["*"]}},
            },
        }))?;
        match api(&client, &ns, "ServerAuthorization")
            .create(&post, &authz)
            .await
        {
            Ok(_) => {
                bail!("a ServerAuthorization with unauthenticated and meshTLS must be refused")
            }
            Err(kube::Error::Api(status)) => ensure!(
                status.message.contains("spec.client"),
                "the refusal must name spec.client: {}",
                status.message
            ),
            Err(other) => return Err(other.into()),
        }

        // A valid Server is admitted.
        servers
            .create(&post, &server("good", serde_json::json!("http"), "HTTP/1")?)
            .await
            .context("a valid Server must be admitted")?;
        Ok(())
    })
}

fn policy_api_reflects_a_new_server_within_one_second(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy", &[], &[]).await?;
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &resources::pod("web", &[]))
            .await?;
        let path = format!("/v1/inbound/{ns}/web/8080");
        let addr = h.controller.policy_addr;

        // The pod's port starts with the default policy.
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = loop {
            let (status, body) = http_get(addr, &path).await?;
            if status == 200 {
                break serde_json::from_str::<serde_json::Value>(&body)?;
            }
            ensure!(
                Instant::now() < deadline,
                "the pod never appeared in the policy API: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ensure!(
            before["server"]["kind"] == "default",
            "expected the default policy first: {before}"
        );

        // A Server created through the API is served within a second, by its port name.
        api(&client, &ns, "Server")
            .create(
                &PostParams::default(),
                &server("web-http", serde_json::json!("http"), "HTTP/2")?,
            )
            .await?;
        let created = Instant::now();
        loop {
            let (status, body) = http_get(addr, &path).await?;
            ensure!(status == 200, "policy API answered {status}: {body}");
            let policy: serde_json::Value = serde_json::from_str(&body)?;
            if policy["server"]["name"] == "web-http" {
                ensure!(policy["protocol"] == "HTTP/2", "protocol: {policy}");
                ensure!(
                    policy["authorizations"]
                        .as_array()
                        .is_some_and(|a| a.is_empty()),
                    "a Server without authorizations admits nobody: {policy}"
                );
                break;
            }
            ensure!(
                created.elapsed() < Duration::from_secs(1),
                "the policy API did not reflect the new Server within 1s: {policy}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "policy API reflected the Server after {:?}",
            created.elapsed()
        );
        Ok(())
    })
}
