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
use weft_e2e::{controller::port_spec, resources, weft_cli};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "policy::invalid_server_is_refused_with_weft_message",
        invalid_server_is_refused_with_weft_message,
    ),
    (
        "policy::invalid_route_policies_are_refused_with_field_messages",
        invalid_route_policies_are_refused_with_field_messages,
    ),
    (
        "policy::inbound_api_streams_a_new_server_within_one_second",
        inbound_api_streams_a_new_server_within_one_second,
    ),
    (
        "policy::weft_policy_prints_the_servers_policy_and_watches_it",
        weft_policy_prints_the_servers_policy_and_watches_it,
    ),
    (
        "policy::weft_policy_finds_the_controller_from_the_installation",
        weft_policy_finds_the_controller_from_the_installation,
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

fn object(
    api_version: &str,
    kind: &str,
    name: &str,
    spec: serde_json::Value,
) -> Result<DynamicObject> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

fn routes_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// AuthorizationPolicies, authentications and HTTPRoutes on Weft Servers that the proxy could not
/// enforce are refused by the API server with Weft's field-level message; an HTTPRoute of another
/// implementation is admitted whatever it holds; valid objects are admitted.
fn invalid_route_policies_are_refused_with_field_messages(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy-routes", &[], &[]).await?;
        let post = PostParams::default();
        let weft = "policy.weft.dev/v1beta1";
        let server_parent =
            serde_json::json!([{"group": "policy.weft.dev", "kind": "Server", "name": "web"}]);
        let rewrite = serde_json::json!([{"filters": [
            {"type": "URLRewrite", "urlRewrite": {"hostname": "elsewhere.example.com"}}]}]);
        let refused = [
            (
                api(&client, &ns, "AuthorizationPolicy"),
                object(weft, "AuthorizationPolicy", "bad-target", serde_json::json!({
                    "targetRef": {"group": "policy.weft.dev", "kind": "Deployment", "name": "web"}}))?,
                "spec.targetRef: \"Deployment\" in group \"policy.weft.dev\" is not a target Weft knows",
            ),
            (
                api(&client, &ns, "NetworkAuthentication"),
                object(weft, "NetworkAuthentication", "bad-cidr", serde_json::json!({
                    "networks": [{"cidr": "10.0.0.0/33"}]}))?,
                "spec.networks[0].cidr: \"10.0.0.0/33\" is not a CIDR",
            ),
            (
                api(&client, &ns, "NetworkAuthentication"),
                object(weft, "NetworkAuthentication", "bad-except", serde_json::json!({
                    "networks": [{"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}]}))?,
                "spec.networks[0].except[0]: 192.168.0.0/16 is not inside cidr 10.0.0.0/8",
            ),
            (
                api(&client, &ns, "MeshTLSAuthentication"),
                object(weft, "MeshTLSAuthentication", "nobody", serde_json::json!({}))?,
                "spec: set identities",
            ),
            (
                routes_api(&client, &ns),
                object("gateway.networking.k8s.io/v1", "HTTPRoute", "rewrite", serde_json::json!({
                    "parentRefs": server_parent, "rules": rewrite}))?,
                "spec.rules[0].filters[0].type: UrlRewrite is not a filter the proxy applies to inbound requests",
            ),
            (
                routes_api(&client, &ns),
                object("gateway.networking.k8s.io/v1", "HTTPRoute", "bad-regex", serde_json::json!({
                    "parentRefs": server_parent,
                    "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": "/items/[0-9"}}]}]}))?,
                "spec.rules[0].matches[0].path.value: \"/items/[0-9\" is not a valid regular expression",
            ),
        ];
        for (api, object, message) in refused {
            let name = object.metadata.name.clone().unwrap_or_default();
            match api.create(&post, &object).await {
                Ok(_) => bail!("{name} must be refused"),
                Err(kube::Error::Api(status)) => ensure!(
                    status.message.contains(message)
                        && status.message.contains("denied the request"),
                    "the refusal of {name} must come from Weft's webhook with {message:?}: {}",
                    status.message
                ),
                Err(other) => return Err(other.into()),
            }
        }

        // Another implementation's route is not Weft's to judge.
        routes_api(&client, &ns)
            .create(&post, &object("gateway.networking.k8s.io/v1", "HTTPRoute", "gateway-route",
                serde_json::json!({"parentRefs": [{"name": "public-gateway"}], "rules": rewrite}))?)
            .await
            .context("an HTTPRoute of a Gateway must be admitted")?;
        // Valid objects are admitted.
        api(&client, &ns, "MeshTLSAuthentication")
            .create(
                &post,
                &object(
                    weft,
                    "MeshTLSAuthentication",
                    "billing",
                    serde_json::json!({
                "identityRefs": [{"kind": "ServiceAccount", "name": "billing"}]}),
                )?,
            )
            .await
            .context("a valid MeshTLSAuthentication must be admitted")?;
        routes_api(&client, &ns)
            .create(&post, &object("gateway.networking.k8s.io/v1", "HTTPRoute", "refunds", serde_json::json!({
                "parentRefs": server_parent,
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/refunds"}, "method": "POST"}]}]}))?)
            .await
            .context("a valid HTTPRoute must be admitted")?;
        api(&client, &ns, "AuthorizationPolicy")
            .create(&post, &object(weft, "AuthorizationPolicy", "refunds-billing", serde_json::json!({
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "refunds"},
                "requiredAuthenticationRefs": [
                    {"group": "policy.weft.dev", "kind": "MeshTLSAuthentication", "name": "billing"}]}))?)
            .await
            .context("a valid AuthorizationPolicy must be admitted")?;
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

/// The YAML documents `weft policy` printed.
fn documents(text: &str) -> Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    let mut docs = vec![];
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(doc).context("weft policy printed bad YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// `weft policy NS/POD PORT --addr <grpc> --plaintext` against the harness's controller: the
/// Server and protocol of a pod's port, an unknown pod (exit 1, nothing on stdout), and
/// `--watch` printing a document per change until the pod is deleted.
fn weft_policy_prints_the_servers_policy_and_watches_it(h: &Harness) -> Result<()> {
    let weft = weft_cli::build()?;
    let addr = h.controller.grpc_addr.to_string();
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy-cli", &[], &[]).await?;
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &resources::pod("web", &[]))
            .await?;
        create_server(&client, &ns, "web-http", "http", "HTTP/1").await?;
        let target = format!("{ns}/web");
        let args = ["--addr", addr.as_str(), "--plaintext"];

        // Until the controller has indexed the pod and the Server, it prints another policy or
        // fails with NotFound; then the Server's.
        let deadline = Instant::now() + Duration::from_secs(10);
        let policy = loop {
            let run = weft_cli::policy(&weft, &[&[target.as_str(), "8080"], &args[..]].concat())?;
            if run.code == Some(0) && run.stdout.contains("name: web-http") {
                break run;
            }
            ensure!(
                Instant::now() < deadline,
                "weft policy never printed the Server web-http: {run:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("weft policy {target} 8080:\n{}", policy.stdout);
        let docs = documents(&policy.stdout)?;
        ensure!(docs.len() == 1, "one document: {}", policy.stdout);
        let doc = &docs[0];
        ensure!(
            doc["server"]
                == serde_json::json!({"group": "policy.weft.dev", "kind": "server", "name": "web-http"}),
            "the Server's labels: {doc}"
        );
        ensure!(doc["protocol"]["kind"] == "http1", "protocol: {doc}");
        ensure!(
            doc["authorizations"] == serde_json::json!([]),
            "a Server without authorizations admits nobody: {doc}"
        );

        // An unknown pod: exit 1, the reason on stderr, nothing on stdout.
        let unknown = format!("{ns}/nope");
        let run = weft_cli::policy(&weft, &[&[unknown.as_str(), "8080"], &args[..]].concat())?;
        ensure!(
            run.code == Some(1)
                && run.stdout.is_empty()
                && run
                    .stderr
                    .contains(&format!("pod {unknown} is not known to the policy index")),
            "an unknown pod: {run:?}"
        );

        // --watch: the current policy, one more document per change, and exit 0 when the pod is
        // deleted.
        let mut child = std::process::Command::new(&weft)
            .arg("policy")
            .args([target.as_str(), "8080", "--watch"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting weft policy --watch")?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut printed = String::new();
        let mut wait_for = |text: &str, wait: Duration| -> Result<()> {
            let deadline = Instant::now() + wait;
            while !printed.contains(text) {
                let left = deadline.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left) {
                    Ok(line) => {
                        printed.push_str(&line);
                        printed.push('\n');
                    }
                    Err(_) => bail!(
                        "weft policy --watch did not print {text:?} within {wait:?}:\n{printed}"
                    ),
                }
            }
            Ok(())
        };
        let result = async {
            wait_for("kind: http1", Duration::from_secs(10))?;
            let authz: DynamicObject = serde_json::from_value(serde_json::json!({
                "apiVersion": "policy.weft.dev/v1beta1",
                "kind": "ServerAuthorization",
                "metadata": {"name": "anyone"},
                "spec": {"server": {"name": "web-http"}, "client": {"unauthenticated": true}},
            }))?;
            api(&client, &ns, "ServerAuthorization")
                .create(&PostParams::default(), &authz)
                .await?;
            wait_for("authentication: unauthenticated", Duration::from_secs(5))?;
            Api::<Pod>::namespaced(client.clone(), &ns)
                .delete("web", &kube::api::DeleteParams::default().grace_period(0))
                .await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if let Err(error) = result {
            let _ = child.kill();
            return Err(error);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("weft policy --watch did not exit when the pod was deleted");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            pipe.read_to_string(&mut stderr)?;
        }
        ensure!(
            status.success() && stderr.contains("the controller ended the watch"),
            "weft policy --watch must exit 0 when the stream ends: {status}, stderr: {stderr}"
        );
        // Drain what the reader thread still holds.
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            printed.push_str(&line);
            printed.push('\n');
        }
        let docs = documents(&printed)?;
        ensure!(
            docs.len() == 2
                && printed.matches("---\n").count() == 2
                && docs[1]["authorizations"][0]["labels"]["name"] == "anyone",
            "two documents, each after ---, the second with the authorization:\n{printed}"
        );
        Ok(())
    })
}

/// Without --addr, or with --addr but without --trust-anchors and --server-name, `weft policy`
/// reads the installation: its Deployment's args (the controller's identity and gRPC port, the
/// pods' selector) and the trust anchors ConfigMap. There is no node here, so no controller pod
/// is ever ready; the errors show what was found.
fn weft_policy_finds_the_controller_from_the_installation(h: &Harness) -> Result<()> {
    let weft = weft_cli::build()?;
    let kubeconfig = format!("--kubeconfig={}", h.cluster.kubeconfig.display());
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "e2e-policy-install", &[], &[]).await?;
        let run = |args: &[&str]| {
            let mut all = vec!["e2e/web", "8080", kubeconfig.as_str(), "-n", ns.as_str()];
            all.extend_from_slice(args);
            weft_cli::policy(&weft, &all)
        };

        // Nothing installed under release `mesh`.
        let nothing = run(&["--release", "mesh"])?;
        ensure!(
            nothing.code == Some(1)
                && nothing.stdout.is_empty()
                && nothing
                    .stderr
                    .contains(&format!("there is no Deployment {ns}/mesh-weft")),
            "no installation: {nothing:?}"
        );

        // The chart's objects for release `mesh`: the Deployment (its pods never run here) and
        // the trust anchors.
        let deployment: k8s_openapi::api::apps::v1::Deployment =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "mesh-weft"},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/instance": "mesh"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/instance": "mesh"}},
                        "spec": {"containers": [{
                            "name": "weft-controller",
                            "image": "registry.example/weft-controller:1",
                            "args": [
                                "--grpc-addr=0.0.0.0:8090",
                                "--service-account=mesh-weft",
                                format!("--control-plane-namespace={ns}"),
                                "--identity-trust-domain=example.org",
                            ],
                        }]},
                    },
                },
            }))?;
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &deployment)
            .await?;
        let anchors = weft_e2e::pki::Pki::generate("weft-policy")?.ca_pem;
        let config_map: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "mesh-weft-identity-trust-anchors"},
                "data": {"ca-bundle.crt": anchors},
            }))?;
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &config_map)
            .await?;

        let no_pod = run(&["--release", "mesh"])?;
        ensure!(
            no_pod.code == Some(1)
                && no_pod.stdout.is_empty()
                && no_pod
                    .stderr
                    .contains(&format!("no controller pod in {ns} is ready"))
                && no_pod.stderr.contains("app.kubernetes.io/instance=mesh"),
            "no ready controller pod: {no_pod:?}"
        );

        // --addr without --trust-anchors and --server-name: TLS for the identity the Deployment
        // names, with the ConfigMap's anchors. The harness's controller speaks plaintext, so the
        // handshake fails, naming the address and the name.
        let addr = h.controller.grpc_addr.to_string();
        let tls = run(&["--release", "mesh", "--addr", addr.as_str()])?;
        let name = format!("mesh-weft.{ns}.serviceaccount.identity.{ns}.example.org");
        ensure!(
            tls.code == Some(1)
                && tls.stdout.is_empty()
                && tls.stderr.contains(&format!(
                    "cannot reach the controller's policy API at {addr} (TLS, server name {name})"
                )),
            "TLS to the harness's plaintext controller: {tls:?}"
        );
        Ok(())
    })
}
