//! Policy resources through the real API server: the validating webhook, and the proxies' inbound
//! policy gRPC API fed by real watches.

use crate::{block_on, Harness};
use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Api, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use linkerd2_proxy_api::inbound::{self, proxy_protocol::Kind};
use std::time::{Duration, Instant};
use weft_e2e::{controller::port_spec, resources};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "policy::invalid_server_is_refused_with_weft_message",
        invalid_server_is_refused_with_weft_message,
    ),
    (
        "policy::inbound_api_streams_a_new_server_within_one_second",
        inbound_api_streams_a_new_server_within_one_second,
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

/// The next message of a watch, or why there is none within `wait`.
async fn next_policy(
    stream: &mut tonic::Streaming<inbound::Server>,
    wait: Duration,
) -> Result<Option<inbound::Server>> {
    match tokio::time::timeout(wait, stream.message()).await {
        Err(_) => bail!("no policy within {wait:?}"),
        Ok(message) => Ok(message?),
    }
}

fn protocol(server: &inbound::Server) -> Option<&Kind> {
    server.protocol.as_ref().and_then(|p| p.kind.as_ref())
}

fn inbound_api_streams_a_new_server_within_one_second(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy", &[], &[]).await?;
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &resources::pod("web", &[]))
            .await?;
        let mut policies = h.controller.policy_client().await?;

        // The pod's port starts with the default policy. Until the controller has indexed the
        // pod it answers NotFound, on which a proxy retries, as here.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match policies.watch_port(port_spec(&ns, "web", 8080)).await {
                Ok(response) => break response.into_inner(),
                Err(status) if status.code() == tonic::Code::NotFound => ensure!(
                    Instant::now() < deadline,
                    "the pod never appeared in the policy API: {status}"
                ),
                Err(status) => bail!("WatchPort refused: {status}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let first = next_policy(&mut stream, Duration::from_secs(5))
            .await?
            .context("the watch ended before its first policy")?;
        ensure!(
            first.labels.get("kind").map(String::as_str) == Some("default"),
            "expected the default policy first: {first:?}"
        );
        ensure!(
            matches!(protocol(&first), Some(Kind::Detect(d)) if d.timeout.is_some()),
            "a default policy detects the protocol, with a timeout: {first:?}"
        );

        // A Server created through the API is streamed within a second, by its port name.
        api(&client, &ns, "Server")
            .create(
                &PostParams::default(),
                &server("web-http", serde_json::json!("http"), "HTTP/2")?,
            )
            .await?;
        let created = Instant::now();
        let policy = next_policy(&mut stream, Duration::from_secs(1))
            .await
            .context("the policy API did not stream the new Server within 1s")?
            .context("the watch ended instead of streaming the new Server")?;
        eprintln!(
            "policy API streamed the Server after {:?}",
            created.elapsed()
        );
        ensure!(
            policy.labels.get("name").map(String::as_str) == Some("web-http")
                && policy.labels.get("group").map(String::as_str) == Some("policy.weft.dev"),
            "labels: {policy:?}"
        );
        ensure!(
            matches!(protocol(&policy), Some(Kind::Http2(_))),
            "protocol: {policy:?}"
        );
        ensure!(
            policy.authorizations.is_empty(),
            "a Server without authorizations admits nobody: {policy:?}"
        );

        // A ServerAuthorization by service account reaches the proxy as that account's identity.
        let authz: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "policy.weft.dev/v1beta1",
            "kind": "ServerAuthorization",
            "metadata": {"name": "web-clients"},
            "spec": {
                "server": {"name": "web-http"},
                "client": {"meshTLS": {"serviceAccounts": [{"name": "api"}]}},
            },
        }))?;
        api(&client, &ns, "ServerAuthorization")
            .create(&PostParams::default(), &authz)
            .await?;
        let policy = next_policy(&mut stream, Duration::from_secs(5))
            .await?
            .context("the watch ended instead of streaming the authorization")?;
        let debug = format!("{policy:?}");
        ensure!(
            policy.authorizations.len() == 1
                && debug.contains(&format!("api.{ns}.serviceaccount.identity.")),
            "one authorization naming the identity of {ns}/api: {policy:?}"
        );

        // Deleting the pod ends the watch.
        Api::<Pod>::namespaced(client.clone(), &ns)
            .delete("web", &kube::api::DeleteParams::default().grace_period(0))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(
                !left.is_zero(),
                "the watch did not end when the pod was deleted"
            );
            if next_policy(&mut stream, left).await?.is_none() {
                break;
            }
        }
        Ok(())
    })
}
