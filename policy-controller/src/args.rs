//! Command-line arguments and the wiring of the controller's parts on kubert's runtime.

use crate::{
    destination::{DestinationMetrics, DestinationService},
    identity::{IdentityMetrics, KubeTokenReviewer},
    inbound::{InboundPolicyMetrics, InboundPolicyService, InboundSettings},
    outbound::{OutboundPolicyMetrics, OutboundPolicyService},
    proxy_api::ProxyApiArgs,
    server::shutdown::Stopping,
};
use crate::{
    server::tls,
    watch::{
        crd_check::{Requirement, GATEWAY_API},
        crd_watch, index_driver, watch_all, IndexFanout, NamespaceFanout, NamespaceIndex,
        NamespaceMetrics, SyncGate,
    },
    webhook::metrics::AdmissionMetrics,
    webhook::router::{AdmissionService, InjectorSlot},
};
use anyhow::{Context, Result};
use k8s_openapi::api::{
    core::v1::{Namespace, Pod, Service},
    discovery::v1::EndpointSlice,
};
use prometheus_client::registry::Registry;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use weft_endpoints_index::{EndpointsIndex, EndpointsIndexMetrics};
use weft_injector::{
    config::{server_version, NativeSidecar, ProxyArgs},
    Injector,
};
use weft_policy_index::{Index, IndexMetrics};
use weft_policy_k8s_api::{
    AuthorizationPolicy, HTTPRoute, MeshTLSAuthentication, NetworkAuthentication, Server,
    ServerAuthorization,
};

/// The Weft controller: injects the Weft proxy into pods at admission, indexes inbound policy for
/// the proxies, and serves /live, /ready and /metrics.
#[derive(Debug, clap::Parser)]
#[command(name = "weft-controller", version, about, long_about = None)]
pub struct Args {
    /// Log filter, in the syntax of tracing's EnvFilter (e.g. `info`, `weft=debug,warn`). `h2=error`
    /// keeps one client flooding HTTP/2 stream resets from flooding the log (the h2 library warns
    /// once per connection it closes for that; the connection is closed either way)
    #[arg(long, default_value = "info,kube=warn,h2=error", env = "WEFT_LOG")]
    log_level: kubert::LogFilter,

    /// Log format: `plain` or `json`
    #[arg(long, default_value = "plain")]
    log_format: kubert::LogFormat,

    #[command(flatten)]
    client: kubert::ClientArgs,

    #[command(flatten)]
    admin: kubert::AdminArgs,

    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    proxy: ProxyArgs,

    #[command(flatten)]
    proxy_api: ProxyApiArgs,
}

/// The HTTPS server of the admission webhooks.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Address of the HTTPS server of the admission webhooks (`POST /inject`, `POST /validate`)
    #[arg(long, default_value = "0.0.0.0:443")]
    server_addr: SocketAddr,

    /// PEM file with the webhook server's private key (PKCS#8, PKCS#1 or SEC1); re-read when it
    /// changes, so rotated credentials need no restart
    #[arg(long)]
    server_tls_key: PathBuf,

    /// PEM file with the webhook server's certificate chain, leaf first; re-read when it changes
    #[arg(long)]
    server_tls_certs: PathBuf,
}

impl Args {
    /// Runs the controller until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<()> {
        let Self {
            log_level,
            log_format,
            client,
            admin,
            server,
            proxy,
            proxy_api,
        } = self;

        // Validate our own flags before touching the network, so a typo fails fast and clearly.
        // The injected proxies enforce the same default policy and cluster networks as the index.
        let trust_anchors_file = proxy.identity_trust_anchors_file.clone();
        let native_sidecar = proxy.native_sidecar;
        let mut proxy = proxy.load().context("invalid proxy or cluster flags")?;
        // The cluster and the mesh as the flags describe them, for the injector, the identity
        // service, the inbound mapping and both indexes alike.
        let cluster = proxy.cluster.clone();

        let mut registry = Registry::default();
        let weft = registry.sub_registry_with_prefix("weft");
        let admission_metrics = AdmissionMetrics::register(weft);
        let namespace_metrics = NamespaceMetrics::register(weft);
        let index_metrics = IndexMetrics::register(weft);
        let identity_metrics = IdentityMetrics::register(weft);
        let inbound_metrics = InboundPolicyMetrics::register(weft);
        let endpoints_metrics = EndpointsIndexMetrics::register(weft);
        let destination_metrics = DestinationMetrics::register(weft);
        let outbound_metrics = OutboundPolicyMetrics::register(weft);
        let runtime_metrics =
            kubert::RuntimeMetrics::register(registry.sub_registry_with_prefix("kube"));

        let mut runtime = kubert::Runtime::builder()
            .with_log(log_level, log_format)
            .with_admin(admin.into_builder().with_prometheus(registry))
            .with_client(client)
            .with_metrics(runtime_metrics)
            .with_fixed_delay_on_error(Duration::from_secs(1))
            .build()
            .await
            .context("failed to start the controller runtime")?;

        // `--native-sidecar=auto` asks the API server which layout its pods can have, in the
        // background (the controller answers /live without the API server); /ready and /inject
        // wait for the answer.
        let injector = InjectorSlot::default();
        let proxy_config = proxy.clone();
        if native_sidecar == NativeSidecar::Auto {
            let (client, slot, ready) = (
                runtime.client(),
                injector.clone(),
                runtime.initialized_handle(),
            );
            tokio::spawn(async move {
                proxy.native_sidecar = native_sidecars_supported(&client).await;
                slot.fill(Injector::new(proxy));
                drop(ready);
            });
        } else {
            injector.fill(Injector::new(proxy));
        }

        // The server listens, and the webhook's credentials load, before anything is watched, so a
        // taken port or an unusable key fails start-up with a clear error.
        let credentials = tls::TlsCredentials::load(
            server.server_tls_key.clone(),
            server.server_tls_certs.clone(),
        )
        .context("the webhook server's TLS credentials cannot be used")?;
        let webhook_listener = tokio::net::TcpListener::bind(server.server_addr)
            .await
            .with_context(|| format!("failed to listen on --server-addr {}", server.server_addr))?;
        // The identity issuer loads, the gRPC server's own certificate is issued and its port is
        // bound before anything is watched, too.
        let inbound_settings = InboundSettings::new(&cluster)
            .context("invalid inbound policy settings (--cluster-networks)")?;
        let proxy_api = proxy_api
            .prepare(cluster.mesh.clone(), trust_anchors_file, identity_metrics)
            .await?;
        let server_name = proxy_api.server_name().to_string();
        let config = &proxy_config;
        for (flag, api) in [
            ("--proxy-identity-name", &config.identity_api),
            ("--proxy-policy-name", &config.policy_api),
        ] {
            if api.name != proxy_api.server_name() {
                tracing::warn!(
                    proxies_expect = %api.name,
                    serves_as = %proxy_api.server_name(),
                    "injected proxies will refuse the controller: {flag} differs from the controller's own identity (--service-account, --control-plane-namespace, --identity-trust-domain)"
                );
            }
        }

        // Namespaces feed both the injection webhook's namespace index and the policy index
        // (default-policy overrides) from one watch.
        let namespaces = NamespaceIndex::shared(namespace_metrics);
        let policy = Index::shared(cluster.clone(), index_metrics);
        let fanout = NamespaceFanout::shared(namespaces.clone(), policy.clone());
        let events = watch_all::<Namespace, _>(&mut runtime);
        let gate = SyncGate::new(fanout, runtime.initialized_handle());
        tokio::spawn(index_driver::cluster(gate, events));

        // Pods and Servers feed the policy index and the endpoints index (which needs the opaque
        // Servers) from one watch each; Services and EndpointSlices feed the endpoints index;
        // the other policy resources feed the policy index.
        // Each watch holds readiness until its first full list has been indexed. Malformed
        // policy objects are skipped, not fatal.
        let endpoints = EndpointsIndex::shared(cluster, endpoints_metrics);
        let both = IndexFanout::shared(policy.clone(), endpoints.clone());
        let events = watch_all::<Pod, _>(&mut runtime);
        let gate = SyncGate::new(both.clone(), runtime.initialized_handle());
        tokio::spawn(index_driver::namespaced(gate, events));
        let events = watch_all::<Service, _>(&mut runtime);
        let gate = SyncGate::new(endpoints.clone(), runtime.initialized_handle());
        tokio::spawn(index_driver::namespaced(gate, events));
        let events = watch_all::<EndpointSlice, _>(&mut runtime);
        let gate = SyncGate::new(endpoints.clone(), runtime.initialized_handle());
        tokio::spawn(index_driver::namespaced(gate, events));
        // The policy watches start once their CRD is installed (a watch is lazy: nothing is
        // requested until it is first polled). Until then the controller logs one clear error
        // every 30s instead of a 404 per retry, and /ready stays false. A shutdown while waiting
        // drops the unpolled watch, so it does not hold shutdown up.
        crd_watch::spawn::<Server, _, _>(&mut runtime, both, Requirement::Required);
        crd_watch::spawn::<ServerAuthorization, _, _>(
            &mut runtime,
            policy.clone(),
            Requirement::Required,
        );
        crd_watch::spawn::<AuthorizationPolicy, _, _>(
            &mut runtime,
            policy.clone(),
            Requirement::Required,
        );
        crd_watch::spawn::<MeshTLSAuthentication, _, _>(
            &mut runtime,
            policy.clone(),
            Requirement::Required,
        );
        crd_watch::spawn::<NetworkAuthentication, _, _>(
            &mut runtime,
            policy.clone(),
            Requirement::Required,
        );
        // HTTPRoutes need the Gateway API's CRD, which a cluster may not have: while it is
        // missing, Weft is ready and serves injection, identity, Server-level policy and
        // destination without it; when it is installed, /ready waits for the routes' first list.
        crd_watch::spawn::<HTTPRoute, _, _>(
            &mut runtime,
            policy.clone(),
            Requirement::Optional(&GATEWAY_API),
        );

        // Each server holds kubert's shutdown handle until it has drained, so the process exits
        // only once the requests in flight at SIGTERM are answered (`crate::server::shutdown`).
        // The proxies' gRPC API: one server, one Routes: identity, inbound policy, destination
        // and outbound policy. Watch
        // streams end as soon as shutdown begins, so proxies reconnect to another replica.
        let (stop_watches, stopping) = Stopping::new();
        let signaled = runtime.shutdown_handle();
        tokio::spawn(async move {
            let _ = signaled.signaled().await;
            let _ = stop_watches.send(true);
        });
        let inbound =
            InboundPolicyService::new(policy, inbound_settings, stopping.clone(), inbound_metrics);
        let destination =
            DestinationService::new(endpoints.clone(), stopping.clone(), destination_metrics);
        let outbound = OutboundPolicyService::new(endpoints, stopping, outbound_metrics);
        let reviewer = Arc::new(KubeTokenReviewer::new(runtime.client()));
        let routes =
            tonic::service::Routes::new(proxy_api.identity_service(reviewer).into_server())
                .add_service(inbound.into_server())
                .add_service(destination.into_server())
                .add_service(outbound.into_server());
        let grpc_addr = proxy_api.addr();
        proxy_api.spawn(routes, runtime.shutdown_handle());
        tracing::info!(%grpc_addr, server_name = %server_name, "Serving the proxies' gRPC API (identity, inbound policy, destination, outbound policy)");

        let admission = AdmissionService::with_slot(
            injector,
            namespaces,
            Some(runtime.client()),
            admission_metrics,
        );
        tokio::spawn(tls::serve_loaded(
            webhook_listener,
            credentials,
            admission.into_service(),
            runtime.shutdown_handle().signaled(),
        ));
        tracing::info!(server_addr = %server.server_addr, "Serving admission webhooks on HTTPS");

        runtime
            .run()
            .await
            .context("the controller was aborted during shutdown")?;
        Ok(())
    }
}

/// Whether the API server runs native sidecars (Kubernetes 1.29 or later), from its `/version`,
/// asked until it answers (every 2 s, with a warning each time); logged once known. A version
/// that cannot be read is never guessed: injecting the wrong layout would leave pods that never
/// start (a native sidecar on an older cluster is an init container that never exits) or Jobs
/// that never complete. The controller then stays unready and says every 30 s what to set.
async fn native_sidecars_supported(client: &kube::Client) -> bool {
    let info = loop {
        match client.apiserver_version().await {
            Ok(info) => break info,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the API server's version yet, to decide --native-sidecar=auto; retrying in 2s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let Some(version) = server_version(&info.git_version, &info.major, &info.minor) else {
        loop {
            tracing::error!(
                git_version = %info.git_version,
                major = %info.major,
                minor = %info.minor,
                "The API server's version is not understood, so --native-sidecar=auto cannot decide the proxy's layout and the controller stays unready: set --native-sidecar=true (Kubernetes 1.29 or later) or --native-sidecar=false"
            );
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    };
    let native = NativeSidecar::Auto.resolve(Some(version));
    tracing::info!(
        api_server = %info.git_version,
        native_sidecar = native,
        "--native-sidecar=auto: the proxy is injected as a native sidecar only from Kubernetes 1.29"
    );
    native
}
