//! Policy and identity traffic for the soak (`bin/bench-webhook --soak`): what a mesh of proxies
//! asks of the controller's gRPC API while the webhook is under load.
//!
//! In a namespace of its own (`weft-soak-<unique>`, deleted at the end) it creates pods (never scheduled: the API server is enough for the
//! controller's index), a Server on their port 8080 and a service account, then for `--duration`:
//! - keeps `--watches` `WatchPort` streams open on those pods, spread over `--connections`
//!   HTTP/2 connections, each reading every update;
//! - creates and deletes a ServerAuthorization on that Server every `--change-every`, so every
//!   open watch gets an update;
//! - opens `--short-watches-per-second` more watches that read their first policy and end;
//! - sends `--certify-per-second` `Certify` requests, each with a fresh P-256 CSR and a token
//!   from the TokenRequest API (renewed every 5 minutes).
//!
//! One line per minute gives the counts; any error is counted and its first few printed. Exits
//! non-zero when a request failed or a watch ended.

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Pod, ServiceAccount},
};
use kube::api::{Api, DeleteParams, PostParams};
use linkerd2_proxy_api::{
    identity::{identity_client::IdentityClient, CertifyRequest},
    inbound::inbound_server_policies_client::InboundServerPoliciesClient,
};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};
use tonic::transport::Channel;
use weft_e2e::{cluster::client_for, controller::port_spec, mesh, resources};

const USAGE: &str =
    "usage: weft-soak-load --grpc-addr HOST:PORT --kubeconfig FILE --duration SECONDS \
[--pods N] [--watches N] [--connections N] [--short-watches-per-second N] \
[--certify-per-second N] [--change-every SECONDS] [--identity-domain DOMAIN]";

#[derive(Debug)]
struct Options {
    grpc_addr: String,
    kubeconfig: std::path::PathBuf,
    duration: Duration,
    pods: usize,
    watches: usize,
    connections: usize,
    short_watches_per_second: u32,
    certify_per_second: u32,
    change_every: Duration,
    /// What follows `<sa>.<ns>.serviceaccount.identity.` in a proxy's identity.
    identity_domain: String,
}

fn parse_options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        grpc_addr: String::new(),
        kubeconfig: Default::default(),
        duration: Duration::ZERO,
        pods: 20,
        watches: 200,
        connections: 10,
        short_watches_per_second: 10,
        certify_per_second: 5,
        change_every: Duration::from_secs(1),
        identity_domain: "weft.cluster.local".into(),
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag} takes a whole number, got {value:?}"))
        };
        match flag.as_str() {
            "--grpc-addr" => options.grpc_addr = value.clone(),
            "--kubeconfig" => options.kubeconfig = value.clone().into(),
            "--duration" => options.duration = Duration::from_secs(number()?),
            "--pods" => options.pods = number()? as usize,
            "--watches" => options.watches = number()? as usize,
            "--connections" => options.connections = number()? as usize,
            "--short-watches-per-second" => options.short_watches_per_second = number()? as u32,
            "--certify-per-second" => options.certify_per_second = number()? as u32,
            "--change-every" => options.change_every = Duration::from_secs(number()?),
            "--identity-domain" => options.identity_domain = value.clone(),
            _ => bail!("unknown flag {flag}\n{USAGE}"),
        }
    }
    ensure!(
        !options.grpc_addr.is_empty(),
        "--grpc-addr is required\n{USAGE}"
    );
    ensure!(
        !options.kubeconfig.as_os_str().is_empty(),
        "--kubeconfig is required\n{USAGE}"
    );
    ensure!(
        options.duration > Duration::ZERO,
        "--duration must be at least 1 (seconds)\n{USAGE}"
    );
    ensure!(
        options.pods > 0 && options.connections > 0 && !options.change_every.is_zero(),
        "--pods, --connections and --change-every must be at least 1"
    );
    Ok(options)
}

/// What happened, counted by every task.
#[derive(Debug, Default)]
struct Counts {
    watch_updates: AtomicU64,
    short_watches: AtomicU64,
    certified: AtomicU64,
    changes: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn error(&self, what: impl std::fmt::Display) {
        // The first errors are printed; after that they are only counted.
        if self.errors.fetch_add(1, Relaxed) < 10 {
            eprintln!("weft-soak-load: error: {what}");
        }
    }

    fn line(&self) -> String {
        format!(
            "watch updates {}, short watches {}, certified {}, policy changes {}, errors {}",
            self.watch_updates.load(Relaxed),
            self.short_watches.load(Relaxed),
            self.certified.load(Relaxed),
            self.changes.load(Relaxed),
            self.errors.load(Relaxed),
        )
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = parse_options()?;
    let client = client_for(&options.kubeconfig).await?;
    let namespace = resources::namespace(&client, "weft-soak", &[], &[]).await?;
    let options = Arc::new(Load { options, namespace });
    set_up(&client, &options).await?;

    let mut channels = Vec::new();
    for _ in 0..options.connections {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", options.grpc_addr))?
                .connect_timeout(Duration::from_secs(5));
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to the gRPC API at {}", options.grpc_addr))?,
        );
    }
    wait_until_indexed(&channels[0], &options).await?;

    let counts = Arc::new(Counts::default());
    let deadline = tokio::time::Instant::now() + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.watches {
        let channel = channels[i % channels.len()].clone();
        let pod = format!("soak-{}", i % options.pods);
        tasks.spawn(long_watch(
            channel,
            options.clone(),
            pod,
            counts.clone(),
            deadline,
        ));
    }
    tasks.spawn(short_watches(
        channels.clone(),
        options.clone(),
        counts.clone(),
        deadline,
    ));
    tasks.spawn(certify_loop(
        channels.clone(),
        client.clone(),
        options.clone(),
        counts.clone(),
        deadline,
    ));
    tasks.spawn(policy_changes(
        client.clone(),
        options.clone(),
        counts.clone(),
        deadline,
    ));

    let started = Instant::now();
    let mut minute = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(60),
        Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            _ = minute.tick() => println!("minute {}: {}", started.elapsed().as_secs() / 60, counts.line()),
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Err(panic)) => counts.error(format!("a task failed: {panic}")),
                Some(Ok(())) => {}
            },
        }
    }
    println!("total: {}", counts.line());
    let _ = resources::delete_namespace(&client, &options.namespace).await;
    let errors = counts.errors.load(Relaxed);
    ensure!(
        errors == 0,
        "{errors} requests failed or watches ended early"
    );
    Ok(())
}

/// The options and the namespace the load runs in.
#[derive(Debug)]
struct Load {
    options: Options,
    namespace: String,
}

impl std::ops::Deref for Load {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.options
    }
}

async fn set_up(client: &kube::Client, options: &Load) -> Result<()> {
    let ns = &options.namespace;
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    for i in 0..options.pods {
        let name = format!("soak-{i}");
        let mut pod = resources::pod(&name, &[]);
        pod.metadata.labels = Some(resources::to_map(&[("app", "soak")]));
        pods.create(&PostParams::default(), &pod)
            .await
            .with_context(|| format!("creating pod {ns}/{name}"))?;
    }
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "soak"}}))?,
        )
        .await
        .context("creating the soak service account")?;
    let server = serde_json::json!({
        "apiVersion": "policy.weft.dev/v1beta1",
        "kind": "Server",
        "metadata": {"name": "soak-http"},
        "spec": {"podSelector": {"matchLabels": {"app": "soak"}}, "port": 8080, "proxyProtocol": "HTTP/1"},
    });
    mesh::create_policy(client, ns, "Server", server).await
}

/// Waits until the controller answers for the last pod (it may not have indexed them yet).
async fn wait_until_indexed(channel: &Channel, options: &Load) -> Result<()> {
    let mut policies = InboundServerPoliciesClient::new(channel.clone());
    let last = format!("soak-{}", options.pods - 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match policies
            .get_port(port_spec(&options.namespace, &last, 8080))
            .await
        {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => bail!("the controller never answered for pod {last}: {status}"),
        }
    }
}

/// One proxy's watch of a port, read until the deadline; a watch that fails or ends is an error
/// and is opened again.
async fn long_watch(
    channel: Channel,
    options: Arc<Load>,
    pod: String,
    counts: Arc<Counts>,
    deadline: tokio::time::Instant,
) {
    let mut policies = InboundServerPoliciesClient::new(channel);
    while tokio::time::Instant::now() < deadline {
        let mut stream = match policies
            .watch_port(port_spec(&options.namespace, &pod, 8080))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => {
                counts.error(format!("WatchPort {pod}: {status}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match tokio::time::timeout_at(deadline, stream.message()).await {
                Err(_) => return,
                Ok(Ok(Some(_))) => {
                    counts.watch_updates.fetch_add(1, Relaxed);
                }
                Ok(Ok(None)) => {
                    counts.error(format!("the watch of {pod} ended"));
                    break;
                }
                Ok(Err(status)) => {
                    counts.error(format!("the watch of {pod} failed: {status}"));
                    break;
                }
            }
        }
    }
}

/// Watches opened, read once and dropped, as proxies that restart do.
async fn short_watches(
    channels: Vec<Channel>,
    options: Arc<Load>,
    counts: Arc<Counts>,
    deadline: tokio::time::Instant,
) {
    if options.short_watches_per_second == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1) / options.short_watches_per_second);
    let mut n = 0usize;
    while tick.tick().await < deadline {
        n += 1;
        let mut policies = InboundServerPoliciesClient::new(channels[n % channels.len()].clone());
        let pod = format!("soak-{}", n % options.pods);
        let spec = port_spec(&options.namespace, &pod, 8080);
        let counts = counts.clone();
        tokio::spawn(async move {
            let first = async {
                let mut stream = policies.watch_port(spec).await?.into_inner();
                stream.message().await
            };
            match tokio::time::timeout(Duration::from_secs(5), first).await {
                Ok(Ok(Some(_))) => {
                    counts.short_watches.fetch_add(1, Relaxed);
                }
                Ok(Ok(None)) => {
                    counts.error(format!("a watch of {pod} ended before its first policy"))
                }
                Ok(Err(status)) => counts.error(format!("a short watch of {pod}: {status}")),
                Err(_) => counts.error(format!("a watch of {pod} sent nothing within 5 s")),
            }
        });
    }
}

async fn token(client: &kube::Client, namespace: &str) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["identity.weft.dev".into()],
            expiration_seconds: Some(600),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request("soak", &PostParams::default(), &request)
        .await
        .context("TokenRequest for the soak service account")?;
    Ok(issued.status.context("TokenRequest without status")?.token)
}

/// A CSR as the proxy's identity wrapper makes it: a fresh P-256 key, one DNS SAN.
fn csr(identity: &str) -> Result<Vec<u8>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![identity.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key)?.der().to_vec())
}

async fn certify_loop(
    channels: Vec<Channel>,
    client: kube::Client,
    options: Arc<Load>,
    counts: Arc<Counts>,
    deadline: tokio::time::Instant,
) {
    if options.certify_per_second == 0 {
        return;
    }
    let identity = format!(
        "soak.{}.serviceaccount.identity.{}",
        options.namespace, options.identity_domain
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1) / options.certify_per_second);
    let mut current: Option<(String, Instant)> = None;
    let mut n = 0usize;
    while tick.tick().await < deadline {
        n += 1;
        let fresh = current
            .as_ref()
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(300));
        let token = match fresh {
            Some((token, _)) => token.clone(),
            None => match token(&client, &options.namespace).await {
                Ok(token) => {
                    current = Some((token.clone(), Instant::now()));
                    token
                }
                Err(error) => {
                    counts.error(format!("{error:#}"));
                    continue;
                }
            },
        };
        let request = match csr(&identity) {
            Ok(csr) => CertifyRequest {
                identity: identity.clone(),
                token: token.into_bytes(),
                certificate_signing_request: csr,
            },
            Err(error) => {
                counts.error(format!("making a CSR: {error:#}"));
                continue;
            }
        };
        let mut identities = IdentityClient::new(channels[n % channels.len()].clone());
        let counts = counts.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), identities.certify(request)).await {
                Ok(Ok(_)) => {
                    counts.certified.fetch_add(1, Relaxed);
                }
                Ok(Err(status)) => counts.error(format!("Certify: {status}")),
                Err(_) => counts.error("Certify did not answer within 10 s"),
            }
        });
    }
}

/// A ServerAuthorization on the soak Server, created and deleted in turn: each change reaches every
/// open watch.
async fn policy_changes(
    client: kube::Client,
    options: Arc<Load>,
    counts: Arc<Counts>,
    deadline: tokio::time::Instant,
) {
    let api = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        &options.namespace,
        &mesh::policy_resource("ServerAuthorization"),
    );
    let mut tick = tokio::time::interval(options.change_every);
    let mut exists = false;
    while tick.tick().await < deadline {
        let changed = if exists {
            api.delete("soak-clients", &DeleteParams::default())
                .await
                .map(|_| ())
                .context("deleting ServerAuthorization soak-clients")
        } else {
            mesh::create_policy(
                &client,
                &options.namespace,
                "ServerAuthorization",
                serde_json::json!({
                    "apiVersion": "policy.weft.dev/v1beta1",
                    "kind": "ServerAuthorization",
                    "metadata": {"name": "soak-clients"},
                    "spec": {
                        "server": {"name": "soak-http"},
                        "client": {"unauthenticated": true, "networks": [{"cidr": "10.0.0.0/8"}]},
                    },
                }),
            )
            .await
        };
        match changed {
            Ok(()) => {
                exists = !exists;
                counts.changes.fetch_add(1, Relaxed);
            }
            Err(error) => counts.error(format!("{error:#}")),
        }
    }
}
