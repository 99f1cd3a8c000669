//! Command-line arguments and the wiring of the controller's parts on kubert's runtime.

use crate::{
    admission::AdmissionService,
    metrics::AdmissionMetrics,
    namespaces::{NamespaceIndex, NamespaceMetrics},
    sync_gate::SyncGate,
};
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::watcher;
use prometheus_client::registry::Registry;
use std::time::Duration;
use weft_injector::{config::ProxyArgs, Injector};

/// The Weft controller: injects the Weft proxy into pods at admission, indexes inbound policy for
/// the proxies, and serves /live, /ready and /metrics.
#[derive(Debug, clap::Parser)]
#[command(name = "weft-controller", version, about, long_about = None)]
pub struct Args {
    /// Log filter, in the syntax of tracing's EnvFilter (e.g. `info`, `weft=debug,warn`)
    #[arg(long, default_value = "info,kube=warn", env = "WEFT_LOG")]
    log_level: kubert::LogFilter,

    /// Log format: `plain` or `json`
    #[arg(long, default_value = "plain")]
    log_format: kubert::LogFormat,

    #[command(flatten)]
    client: kubert::ClientArgs,

    #[command(flatten)]
    admin: kubert::AdminArgs,

    #[command(flatten)]
    server: kubert::ServerArgs,

    #[command(flatten)]
    proxy: ProxyArgs,
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
        } = self;

        // Validate our own flags before touching the network, so a typo fails fast and clearly.
        let injector = Injector::new(proxy.to_config().context("invalid proxy configuration")?);

        let mut registry = Registry::default();
        let weft = registry.sub_registry_with_prefix("weft");
        let admission_metrics = AdmissionMetrics::register(weft);
        let namespace_metrics = NamespaceMetrics::register(weft);
        let runtime_metrics =
            kubert::RuntimeMetrics::register(registry.sub_registry_with_prefix("kube"));

        let mut runtime = kubert::Runtime::builder()
            .with_log(log_level, log_format)
            .with_admin(admin.into_builder().with_prometheus(registry))
            .with_client(client)
            .with_metrics(runtime_metrics)
            .with_fixed_delay_on_error(Duration::from_secs(1))
            .with_server(server)
            .build()
            .await
            .context("failed to start the controller runtime")?;

        // Namespaces: the injection webhook reads their annotations from this index.
        let namespaces = NamespaceIndex::shared(namespace_metrics);
        let namespace_events = runtime.watch_all::<Namespace>(watcher::Config::default());
        let gate = SyncGate::new(namespaces.clone(), runtime.initialized_handle());
        tokio::spawn(kubert::index::cluster(gate, namespace_events));

        let admission = AdmissionService::new(
            injector,
            namespaces,
            Some(runtime.client()),
            admission_metrics,
        );
        let server_addr = runtime.server_addr();
        let runtime = runtime.spawn_server(admission.into_service());
        tracing::info!(%server_addr, "Serving admission webhooks on HTTPS");

        runtime
            .run()
            .await
            .context("the controller was aborted during shutdown")?;
        Ok(())
    }
}
