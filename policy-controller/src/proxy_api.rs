//! Flags and start-up of the proxy-facing gRPC server ([`crate::server::grpc`]) and the identity service
//! it serves. [`ProxyApiArgs::prepare`] does everything that can fail (loading the issuer, issuing
//! the controller's own certificate, binding the port) before anything is watched, so a bad flag
//! or file fails start-up with a clear error; [`ProxyApi::spawn`] then serves a [`Routes`].

use crate::{
    identity::{
        reload::POLL_INTERVAL, IdentityMetrics, IdentityService, IssuerFiles, IssuerStore,
        TokenReviewer,
    },
    server::grpc::{self, GrpcTransport, ServingIdentity},
};
use anyhow::{Context, Result};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};
use tonic::service::Routes;

/// The proxies' gRPC API and the identity service's issuer.
#[derive(Debug, clap::Args)]
pub struct ProxyApiArgs {
    /// Address of the gRPC server the proxies use (TLS 1.3; HTTP/2): identity, inbound policy,
    /// destination and outbound policy
    #[arg(long, default_value = "0.0.0.0:8090")]
    pub grpc_addr: SocketAddr,

    /// Serve the gRPC API without TLS. Only allowed when --grpc-addr is a loopback address (local
    /// debugging and tests): proxies dialing a non-loopback address always require TLS
    #[arg(long)]
    pub grpc_plaintext: bool,

    /// PEM file with the issuer's CA certificate first, then any intermediates (`tls.crt` of a
    /// kubernetes.io/tls Secret, e.g. from cert-manager); re-read when it changes
    #[arg(long)]
    pub identity_issuer_certs: PathBuf,

    /// PEM file with the issuer's private key (`tls.key`: PKCS#8, SEC1 or PKCS#1); re-read when it
    /// changes
    #[arg(long)]
    pub identity_issuer_key: PathBuf,

    /// Validity of the certificates issued to proxies (and to the controller itself), never past
    /// the issuer's own expiry: a whole number with a unit, e.g. `24h`, `90m`, `3600s`
    #[arg(long, default_value = "24h", value_parser = parse_lifetime)]
    pub identity_cert_lifetime: Duration,

    /// Service account the controller runs as: its own identity is
    /// `<service-account>.<control-plane-namespace>.serviceaccount.identity.<control-plane-namespace>.<trust-domain>`
    #[arg(long, env = "WEFT_SERVICE_ACCOUNT", default_value = "weft-controller")]
    pub service_account: String,
}

/// Everything loaded and bound, ready to serve.
#[derive(Debug)]
pub struct ProxyApi {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    domain: weft_core::Mesh,
    store: Arc<IssuerStore>,
    serving: Arc<ServingIdentity>,
    lifetime: Duration,
    metrics: IdentityMetrics,
    /// `--grpc-plaintext` (checked to be on loopback).
    plaintext: bool,
}

impl ProxyApiArgs {
    /// Loads the issuer, issues the controller's certificate and binds `--grpc-addr`. `mesh` and
    /// `trust_anchors_file` are the injector's flags ([`weft_injector::config::ProxyArgs`]), so
    /// the identity service and the injected proxies always agree.
    pub async fn prepare(
        self,
        mesh: weft_core::Mesh,
        trust_anchors_file: Option<PathBuf>,
        metrics: IdentityMetrics,
    ) -> Result<ProxyApi> {
        let anchors = trust_anchors_file.context(
            "--identity-trust-anchors-file is required: the PEM trust anchors the identity issuer chains to",
        )?;
        let own = mesh
            .identity_of_user(&format!(
                "system:serviceaccount:{}:{}",
                mesh.control_plane_namespace(),
                self.service_account
            ))
            .context("invalid --control-plane-namespace or --service-account")?;
        let files = IssuerFiles {
            certs: self.identity_issuer_certs,
            key: self.identity_issuer_key,
            anchors,
        };
        let store = IssuerStore::load(files, metrics.clone(), SystemTime::now())
            .context("the identity issuer cannot be used (--identity-issuer-certs, --identity-issuer-key, --identity-trust-anchors-file)")?;
        let lifetime = self.identity_cert_lifetime;
        let serving = ServingIdentity::issue(own, &store.current(), lifetime, SystemTime::now())
            .context("cannot issue the gRPC server's certificate")?;
        if self.grpc_plaintext {
            grpc::plaintext_allowed(self.grpc_addr)
                .context("--grpc-plaintext needs a loopback --grpc-addr")?;
        }
        let listener = tokio::net::TcpListener::bind(self.grpc_addr)
            .await
            .with_context(|| format!("failed to listen on --grpc-addr {}", self.grpc_addr))?;
        Ok(ProxyApi {
            listener,
            addr: self.grpc_addr,
            domain: mesh,
            store: Arc::new(store),
            serving: Arc::new(serving),
            lifetime,
            metrics,
            plaintext: self.grpc_plaintext,
        })
    }
}

impl ProxyApi {
    /// The Identity service, authenticating tokens with `reviewer` (in the controller,
    /// `KubeTokenReviewer::new(runtime.client())`). Add it to the Routes with
    /// `Routes::new(service.into_server())`.
    pub fn identity_service(&self, reviewer: Arc<dyn TokenReviewer>) -> IdentityService {
        IdentityService::new(
            self.domain.clone(),
            self.store.clone(),
            reviewer,
            self.lifetime,
            self.metrics.clone(),
        )
    }

    /// The address the gRPC server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The controller's identity name, which the proxies verify the server's certificate against
    /// (their `..._IDENTITY_SVC_NAME` and friends).
    pub fn server_name(&self) -> &str {
        self.serving.name()
    }

    /// Serves `routes` until `shutdown` is signaled (holding it until drained), and keeps the
    /// issuer and the server's certificate fresh meanwhile.
    pub fn spawn(self, routes: Routes, shutdown: kubert::shutdown::Watch) {
        let stop_polling = shutdown.clone();
        tokio::spawn(self.store.clone().watch(POLL_INTERVAL, async move {
            let _ = stop_polling.signaled().await;
        }));
        let stop_renewing = shutdown.clone();
        tokio::spawn(
            self.serving
                .clone()
                .keep_renewed(self.store.subscribe(), async move {
                    let _ = stop_renewing.signaled().await;
                }),
        );
        let transport = if self.plaintext {
            tracing::warn!(grpc_addr = %self.addr, "Serving the proxy API on gRPC WITHOUT TLS (--grpc-plaintext, loopback only)");
            GrpcTransport::Plaintext
        } else {
            tracing::info!(grpc_addr = %self.addr, name = %self.serving.name(), "Serving the proxy API on gRPC over TLS");
            GrpcTransport::Tls(self.serving)
        };
        tokio::spawn(async move {
            if let Err(error) =
                grpc::serve(self.listener, transport, routes, shutdown.signaled()).await
            {
                tracing::error!(%error, "The gRPC server could not start");
            }
        });
    }
}

/// A certificate lifetime: a whole number followed by `h`, `m` or `s`; at least one minute.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let expected = "expected a whole number followed by h, m or s, e.g. 24h, 90m, 3600s";
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let seconds_per = match unit {
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("`{s}` has no unit: {expected}")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: {expected}"))?;
    let secs = n
        .checked_mul(seconds_per)
        .ok_or_else(|| format!("`{s}` is too long"))?;
    if secs < 60 {
        return Err(format!(
            "`{s}` is too short: certificates must be valid for at least 1m"
        ));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_lifetime("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_lifetime("3600s"), Ok(Duration::from_secs(3600)));
        for bad in ["", "24", "h", "1.5h", "-1h", "24d", "1 h", "30s"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
        assert!(parse_lifetime("24d")
            .unwrap_err()
            .contains("e.g. 24h, 90m, 3600s"));
    }

    #[derive(Debug, clap::Parser)]
    struct Test {
        #[command(flatten)]
        args: ProxyApiArgs,
    }

    #[test]
    fn flags_and_their_errors() {
        let required = [
            "test",
            "--identity-issuer-certs=tls.crt",
            "--identity-issuer-key=tls.key",
        ];
        let Test { args } = Test::try_parse_from(required).unwrap();
        assert_eq!(args.grpc_addr, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(args.identity_cert_lifetime, Duration::from_secs(86400));
        assert_eq!(args.service_account, "weft-controller");

        let mut bad = required.to_vec();
        bad.push("--identity-cert-lifetime=1d");
        let error = Test::try_parse_from(bad).unwrap_err().to_string();
        assert!(error.contains("--identity-cert-lifetime"), "{error}");
        assert!(error.contains("e.g. 24h, 90m, 3600s"), "{error}");
    }

    #[tokio::test]
    async fn prepare_fails_clearly_on_a_bad_issuer_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let args = || ProxyApiArgs {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_plaintext: false,
            identity_issuer_certs: dir.path().join("tls.crt"),
            identity_issuer_key: dir.path().join("tls.key"),
            identity_cert_lifetime: Duration::from_secs(3600),
            service_account: "weft-controller".into(),
        };
        let mesh = |ns: &str| weft_core::Mesh::new(ns, "cluster.local");
        let anchors = |given: bool| given.then(|| dir.path().join("ca.crt"));
        let error = args()
            .prepare(mesh("weft"), anchors(true), IdentityMetrics::default())
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("tls.crt"), "{error:#}");
        let error = args()
            .prepare(mesh("Weft!"), anchors(true), IdentityMetrics::default())
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("--control-plane-namespace"),
            "{error:#}"
        );
        let error = args()
            .prepare(mesh("weft"), anchors(false), IdentityMetrics::default())
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("--identity-trust-anchors-file is required"),
            "{error:#}"
        );
    }
}
