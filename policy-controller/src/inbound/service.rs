//! The tonic service: looks ports up in the index and streams their policies.

use futures::{stream, Stream};
use linkerd2_proxy_api::inbound::{
    self as proto,
    inbound_server_policies_server::{InboundServerPolicies, InboundServerPoliciesServer},
};
use std::{pin::Pin, sync::Arc};
use tokio::sync::watch;
use weft_policy_index::{InboundPolicy, LookupError};

use super::{
    mapping::{to_server, InboundSettings},
    metrics::{InboundPolicyMetrics, Rpc},
    source::PolicySource,
    workload::Workload,
};
use crate::{
    grpc_metrics::{ApiRpc, OpenStream},
    server::shutdown::Stopping,
};

/// `io.linkerd.proxy.inbound.InboundServerPolicies` over Weft's policy index.
///
/// `GetPort` answers a port's policy now. `WatchPort` sends it at once, then once per change of
/// the port's policy (changes elsewhere send nothing), and ends — with status OK, after which the
/// proxy asks again with a backoff — when the pod is deleted or when `stopping` fires.
#[derive(Clone, Debug)]
pub struct InboundPolicyService {
    index: Arc<dyn PolicySource>,
    settings: Arc<InboundSettings>,
    stopping: Stopping,
    metrics: InboundPolicyMetrics,
}

/// The stream of a `WatchPort` call.
pub type WatchPortStream = Pin<Box<dyn Stream<Item = Result<proto::Server, tonic::Status>> + Send>>;

impl InboundPolicyService {
    /// `stopping` is the server's shutdown signal: open watch streams end when it fires, so
    /// they do not hold the server's drain up (see [`crate::server::shutdown`]).
    pub fn new(
        index: impl PolicySource,
        settings: InboundSettings,
        stopping: Stopping,
        metrics: InboundPolicyMetrics,
    ) -> Self {
        Self {
            index: Arc::new(index),
            settings: Arc::new(settings),
            stopping,
            metrics,
        }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> InboundServerPoliciesServer<Self> {
        InboundServerPoliciesServer::new(self)
    }

    /// The watch of the port a request names; a refusal is counted against `rpc`.
    fn lookup(
        &self,
        rpc: Rpc,
        spec: proto::PortSpec,
    ) -> Result<watch::Receiver<InboundPolicy>, tonic::Status> {
        let result = self.try_lookup(&spec);
        if let Err(status) = &result {
            self.metrics.request(rpc, status.code());
            tracing::debug!(
                rpc = rpc.as_str(), workload = %spec.workload, port = spec.port,
                code = ?status.code(), message = status.message(),
                "Refused an inbound policy request"
            );
        }
        result
    }

    fn try_lookup(
        &self,
        spec: &proto::PortSpec,
    ) -> Result<watch::Receiver<InboundPolicy>, tonic::Status> {
        let workload: Workload =
            spec.workload
                .parse()
                .map_err(|e: super::workload::InvalidWorkload| {
                    tonic::Status::invalid_argument(e.to_string())
                })?;
        let port = u16::try_from(spec.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!(
                    "port {} is not a port number (1-65535)",
                    spec.port
                ))
            })?;
        let lookup = self
            .index
            .pod_port_policy(&workload.namespace, &workload.pod, port);
        lookup.map_err(|error| match error {
            // The proxy may ask before the controller has seen its pod: it retries with a
            // backoff on NotFound.
            LookupError::PodNotFound { .. } => tonic::Status::not_found(error.to_string()),
            LookupError::InvalidPort => tonic::Status::invalid_argument(error.to_string()),
            LookupError::TooManyUndeclaredPorts { .. } => {
                tonic::Status::resource_exhausted(error.to_string())
            }
        })
    }
}

#[tonic::async_trait]
impl InboundServerPolicies for InboundPolicyService {
    async fn get_port(
        &self,
        request: tonic::Request<proto::PortSpec>,
    ) -> Result<tonic::Response<proto::Server>, tonic::Status> {
        let policy = self.lookup(Rpc::GetPort, request.into_inner())?;
        let server = to_server(&policy.borrow(), &self.settings);
        self.metrics.request(Rpc::GetPort, tonic::Code::Ok);
        Ok(tonic::Response::new(server))
    }

    type WatchPortStream = WatchPortStream;

    async fn watch_port(
        &self,
        request: tonic::Request<proto::PortSpec>,
    ) -> Result<tonic::Response<WatchPortStream>, tonic::Status> {
        let policy = self.lookup(Rpc::WatchPort, request.into_inner())?;
        self.metrics.request(Rpc::WatchPort, tonic::Code::Ok);
        let watch = Watch {
            policy,
            stopping: self.stopping.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            first: true,
            _open: self.metrics.stream_opened(Rpc::WatchPort),
        };
        Ok(tonic::Response::new(watch.into_stream()))
    }
}

/// The state of one `WatchPort` stream. Dropping it (the stream ended, or the client went away)
/// releases its count of open watches.
struct Watch {
    policy: watch::Receiver<InboundPolicy>,
    stopping: Stopping,
    settings: Arc<InboundSettings>,
    metrics: InboundPolicyMetrics,
    first: bool,
    _open: OpenStream,
}

impl Watch {
    fn into_stream(self) -> WatchPortStream {
        Box::pin(stream::unfold(self, |mut watch| async move {
            if !std::mem::take(&mut watch.first) {
                let changed = tokio::select! {
                    biased;
                    () = watch.stopping.stopped() => return None,
                    changed = watch.policy.changed() => changed,
                };
                // An error means the index dropped the port's sender: the pod was deleted.
                changed.ok()?;
            }
            let server = to_server(&watch.policy.borrow_and_update(), &watch.settings);
            watch.metrics.update_sent(Rpc::WatchPort);
            Some((Ok(server), watch))
        }))
    }
}
