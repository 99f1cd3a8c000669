//! The tonic service: looks targets up in the endpoints index and streams their policies.

use futures::{stream, Stream};
use linkerd2_proxy_api::outbound::{
    self as proto,
    outbound_policies_server::{OutboundPolicies, OutboundPoliciesServer},
};
use std::{pin::Pin, sync::Arc};
use tokio::sync::watch;
use weft_endpoints_index::{EndpointSet, OutboundTarget, ServicePort};

use super::{
    mapping::outbound_policy,
    metrics::{OutboundPolicyMetrics, OutboundRpc},
    target::{parse_target, TargetSpec},
};
use crate::{
    destination::EndpointsSource,
    grpc_metrics::{ApiRpc, OpenStream},
    server::shutdown::Stopping,
};

/// `io.linkerd.proxy.outbound.OutboundPolicies` over Weft's endpoints index.
///
/// `Get` answers the policy of a Service port or pod port now, and `NotFound` for an address the
/// index does not know (the proxy then forwards to the original destination). `Watch` sends the
/// policy at once, then once per change, and ends with status OK when the target is no longer
/// known or when `stopping` fires; the proxy then asks again with a backoff (and keeps the last
/// policy if the answer is now `NotFound`).
#[derive(Clone, Debug)]
pub struct OutboundPolicyService {
    source: Arc<dyn EndpointsSource>,
    cluster_domain: Arc<str>,
    stopping: Stopping,
    metrics: OutboundPolicyMetrics,
}

/// The stream of a `Watch` call.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<proto::OutboundPolicy, tonic::Status>> + Send>>;

impl OutboundPolicyService {
    /// `source` is the endpoints index (it gives the cluster domain). `stopping` is
    /// the server's shutdown signal: open watches end when it fires.
    pub fn new(
        source: impl EndpointsSource,
        stopping: Stopping,
        metrics: OutboundPolicyMetrics,
    ) -> Self {
        let cluster_domain = Arc::from(source.cluster_domain());
        Self {
            source: Arc::new(source),
            cluster_domain,
            stopping,
            metrics,
        }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> OutboundPoliciesServer<Self> {
        OutboundPoliciesServer::new(self)
    }

    /// The target a request names and its current policy; a refusal is counted against `rpc`.
    fn lookup(
        &self,
        rpc: OutboundRpc,
        spec: &proto::TrafficSpec,
    ) -> Result<(TargetWatch, proto::OutboundPolicy), tonic::Status> {
        let result = self.try_lookup(spec);
        if let Err(status) = &result {
            self.metrics.request(rpc, status.code());
            tracing::debug!(
                rpc = rpc.as_str(), target = ?spec.target, code = ?status.code(),
                message = status.message(), "Refused an outbound policy request"
            );
        }
        result
    }

    fn try_lookup(
        &self,
        spec: &proto::TrafficSpec,
    ) -> Result<(TargetWatch, proto::OutboundPolicy), tonic::Status> {
        let mut target = match parse_target(spec, &self.cluster_domain)? {
            TargetSpec::Addr(addr) => TargetWatch::Addr(self.source.outbound_target(addr)),
            TargetSpec::Service(service) => TargetWatch::Service {
                endpoints: self.source.service_endpoints(&service),
                service,
            },
        };
        match outbound_policy(&target.current(), &self.cluster_domain) {
            Some(policy) => Ok((target, policy)),
            None => Err(tonic::Status::not_found(
                "not a Service port or pod port the mesh knows",
            )),
        }
    }
}

#[tonic::async_trait]
impl OutboundPolicies for OutboundPolicyService {
    async fn get(
        &self,
        request: tonic::Request<proto::TrafficSpec>,
    ) -> Result<tonic::Response<proto::OutboundPolicy>, tonic::Status> {
        let (_, policy) = self.lookup(OutboundRpc::Get, request.get_ref())?;
        self.metrics.request(OutboundRpc::Get, tonic::Code::Ok);
        Ok(tonic::Response::new(policy))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: tonic::Request<proto::TrafficSpec>,
    ) -> Result<tonic::Response<WatchStream>, tonic::Status> {
        let (target, policy) = self.lookup(OutboundRpc::Watch, request.get_ref())?;
        self.metrics.request(OutboundRpc::Watch, tonic::Code::Ok);
        let watch = PolicyWatch {
            target,
            first: Some(policy.clone()),
            sent: policy,
            cluster_domain: self.cluster_domain.clone(),
            stopping: self.stopping.clone(),
            metrics: self.metrics.clone(),
            _open: self.metrics.stream_opened(OutboundRpc::Watch),
        };
        Ok(tonic::Response::new(watch.into_stream()))
    }
}

/// What a request's target is, as it changes.
enum TargetWatch {
    /// An address: what the index says it is.
    Addr(watch::Receiver<OutboundTarget>),
    /// A Service by name: the Service port while it exists, else unknown. By name, the index
    /// does not say whether the port is opaque: the policy detects the protocol.
    Service {
        service: ServicePort,
        endpoints: watch::Receiver<Arc<EndpointSet>>,
    },
}

impl TargetWatch {
    /// The target now; marks it seen.
    fn current(&mut self) -> OutboundTarget {
        match self {
            Self::Addr(target) => target.borrow_and_update().clone(),
            Self::Service { service, endpoints } => {
                if endpoints.borrow_and_update().service_exists {
                    OutboundTarget::Service {
                        service: service.clone(),
                        opaque: false,
                    }
                } else {
                    OutboundTarget::Unknown
                }
            }
        }
    }

    /// Completes when the target may have changed; an error when the index dropped its sender.
    async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        match self {
            Self::Addr(target) => target.changed().await,
            Self::Service { endpoints, .. } => endpoints.changed().await,
        }
    }
}

/// The state of one `Watch` stream. Dropping it (the stream ended, or the client went away)
/// releases its count of open watches.
struct PolicyWatch {
    target: TargetWatch,
    /// The policy of the lookup, sent first.
    first: Option<proto::OutboundPolicy>,
    /// The last policy sent.
    sent: proto::OutboundPolicy,
    cluster_domain: Arc<str>,
    stopping: Stopping,
    metrics: OutboundPolicyMetrics,
    _open: OpenStream,
}

impl PolicyWatch {
    fn into_stream(self) -> WatchStream {
        Box::pin(stream::unfold(self, |mut watch| async move {
            if let Some(policy) = watch.first.take() {
                watch.metrics.update_sent(OutboundRpc::Watch);
                return Some((Ok(policy), watch));
            }
            loop {
                let changed = tokio::select! {
                    biased;
                    () = watch.stopping.stopped() => return None,
                    changed = watch.target.changed() => changed,
                };
                // An error means the index dropped the target's sender.
                changed.ok()?;
                // A target no longer known ends the stream: the proxy asks again.
                let policy = outbound_policy(&watch.target.current(), &watch.cluster_domain)?;
                if policy != watch.sent {
                    watch.sent = policy.clone();
                    watch.metrics.update_sent(OutboundRpc::Watch);
                    return Some((Ok(policy), watch));
                }
            }
        }))
    }
}
