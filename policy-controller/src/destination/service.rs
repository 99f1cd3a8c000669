//! The tonic service: resolves paths against the endpoints index and streams what changes.

use futures::{stream, Stream};
use linkerd2_proxy_api::destination::{
    self as proto,
    destination_server::{Destination, DestinationServer},
};
use std::{collections::VecDeque, pin::Pin, sync::Arc};
use tokio::sync::watch;
use weft_endpoints_index::{parse_authority, EndpointSet, OutboundTarget, ServicePort};

use super::{
    mapping::{diff_updates, initial_update},
    metrics::{DestinationMetrics, DestinationRpc},
    profile::{parse_profile_path, target_profile, ProfilePath},
    source::EndpointsSource,
};
use crate::{
    grpc_metrics::{ApiRpc, OpenStream},
    server::shutdown::Stopping,
};

/// `io.linkerd.proxy.destination.Destination` over Weft's endpoints index.
///
/// `Get` sends a Service port's endpoints at once, then only what changes, and ends (status OK;
/// the proxy resolves again with a backoff) when the index drops the Service port's channel or
/// when `stopping` fires. `GetProfile` sends the profile of an address (or of a Service by name)
/// at once, then a new one only when it changes; it ends the same way.
#[derive(Clone, Debug)]
pub struct DestinationService {
    source: Arc<dyn EndpointsSource>,
    cluster_domain: Arc<str>,
    stopping: Stopping,
    metrics: DestinationMetrics,
}

/// The stream of a `Get` call.
pub type GetStream = Pin<Box<dyn Stream<Item = Result<proto::Update, tonic::Status>> + Send>>;
/// The stream of a `GetProfile` call.
pub type GetProfileStream =
    Pin<Box<dyn Stream<Item = Result<proto::DestinationProfile, tonic::Status>> + Send>>;

impl DestinationService {
    /// `source` is the endpoints index (it gives the cluster domain). `stopping` is
    /// the server's shutdown signal: open streams end when it fires, so they do not hold the
    /// server's drain up (see [`crate::server::shutdown`]).
    pub fn new(
        source: impl EndpointsSource,
        stopping: Stopping,
        metrics: DestinationMetrics,
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
    pub fn into_server(self) -> DestinationServer<Self> {
        DestinationServer::new(self)
    }

    /// Counts and logs a refused request.
    fn refuse(&self, rpc: DestinationRpc, path: &str, status: tonic::Status) -> tonic::Status {
        self.metrics.request(rpc, status.code());
        tracing::debug!(
            rpc = rpc.as_str(), path, code = ?status.code(), message = status.message(),
            "Refused a Destination request"
        );
        status
    }
}

#[tonic::async_trait]
impl Destination for DestinationService {
    type GetStream = GetStream;

    async fn get(
        &self,
        request: tonic::Request<proto::GetDestination>,
    ) -> Result<tonic::Response<GetStream>, tonic::Status> {
        let rpc = DestinationRpc::Get;
        let path = request.into_inner().path;
        // The proxy does not retry InvalidArgument: a path that is no Service authority is not
        // resolved again and again.
        let service = parse_authority(&path, &self.cluster_domain).map_err(|error| {
            self.refuse(
                rpc,
                &path,
                tonic::Status::invalid_argument(error.to_string()),
            )
        })?;
        let endpoints = self.source.service_endpoints(&service);
        self.metrics.request(rpc, tonic::Code::Ok);
        let watch = EndpointsWatch {
            service,
            endpoints,
            sent: None,
            pending: VecDeque::new(),
            stopping: self.stopping.clone(),
            metrics: self.metrics.clone(),
            _open: self.metrics.stream_opened(rpc),
        };
        Ok(tonic::Response::new(watch.into_stream()))
    }

    type GetProfileStream = GetProfileStream;

    async fn get_profile(
        &self,
        request: tonic::Request<proto::GetDestination>,
    ) -> Result<tonic::Response<GetProfileStream>, tonic::Status> {
        let rpc = DestinationRpc::GetProfile;
        let path = request.into_inner().path;
        let path = parse_profile_path(&path, &self.cluster_domain).map_err(|error| {
            self.refuse(
                rpc,
                &path,
                tonic::Status::invalid_argument(error.to_string()),
            )
        })?;
        let (target, fixed) = match path {
            ProfilePath::Addr(addr) => (self.source.outbound_target(addr), None),
            // By name, the profile is the Service's and does not change. The index answers
            // whether a port is opaque only by cluster IP, so a Service asked for by name is not
            // marked opaque here (only proxies in ingress mode ask by name).
            ProfilePath::Service(service) => {
                let (fixed, target) = watch::channel(OutboundTarget::Service {
                    service,
                    opaque: false,
                });
                (target, Some(fixed))
            }
        };
        self.metrics.request(rpc, tonic::Code::Ok);
        let watch = ProfileWatch {
            target,
            _fixed: fixed,
            sent: None,
            cluster_domain: self.cluster_domain.clone(),
            stopping: self.stopping.clone(),
            metrics: self.metrics.clone(),
            _open: self.metrics.stream_opened(rpc),
        };
        Ok(tonic::Response::new(watch.into_stream()))
    }
}

/// The state of one `Get` stream. Dropping it (the stream ended, or the client went away)
/// releases its count of open streams.
struct EndpointsWatch {
    service: ServicePort,
    endpoints: watch::Receiver<Arc<EndpointSet>>,
    /// What the client has been sent so far; `None` before the first message.
    sent: Option<Arc<EndpointSet>>,
    /// Messages computed but not yet sent (a change can take two: `Add` and `Remove`).
    pending: VecDeque<proto::Update>,
    stopping: Stopping,
    metrics: DestinationMetrics,
    _open: OpenStream,
}

impl EndpointsWatch {
    fn into_stream(self) -> GetStream {
        Box::pin(stream::unfold(self, |mut watch| async move {
            loop {
                if let Some(update) = watch.pending.pop_front() {
                    watch.metrics.update_sent(DestinationRpc::Get);
                    return Some((Ok(update), watch));
                }
                match watch.sent.take() {
                    None => {
                        let set = watch.endpoints.borrow_and_update().clone();
                        watch
                            .pending
                            .push_back(initial_update(&watch.service, &set));
                        watch.sent = Some(set);
                    }
                    Some(prev) => {
                        let changed = tokio::select! {
                            biased;
                            () = watch.stopping.stopped() => return None,
                            changed = watch.endpoints.changed() => changed,
                        };
                        // An error means the index dropped the Service port's sender.
                        changed.ok()?;
                        let next = watch.endpoints.borrow_and_update().clone();
                        watch
                            .pending
                            .extend(diff_updates(&watch.service, &prev, &next));
                        watch.sent = Some(next);
                    }
                }
            }
        }))
    }
}

/// The state of one `GetProfile` stream.
struct ProfileWatch {
    target: watch::Receiver<OutboundTarget>,
    /// The sender of a fixed target (a Service by name), held so the stream stays open.
    _fixed: Option<watch::Sender<OutboundTarget>>,
    /// The last profile sent; `None` before the first message.
    sent: Option<proto::DestinationProfile>,
    cluster_domain: Arc<str>,
    stopping: Stopping,
    metrics: DestinationMetrics,
    _open: OpenStream,
}

impl ProfileWatch {
    fn into_stream(self) -> GetProfileStream {
        Box::pin(stream::unfold(self, |mut watch| async move {
            loop {
                if watch.sent.is_some() {
                    let changed = tokio::select! {
                        biased;
                        () = watch.stopping.stopped() => return None,
                        changed = watch.target.changed() => changed,
                    };
                    // An error means the index dropped the address's sender.
                    changed.ok()?;
                }
                let profile =
                    target_profile(&watch.target.borrow_and_update(), &watch.cluster_domain);
                if watch.sent.as_ref() == Some(&profile) {
                    continue;
                }
                watch.sent = Some(profile.clone());
                watch.metrics.update_sent(DestinationRpc::GetProfile);
                return Some((Ok(profile), watch));
            }
        }))
    }
}
