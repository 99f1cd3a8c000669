//! What the Destination and OutboundPolicies APIs read: the endpoints index, behind a small trait
//! so the services can be tested with watch channels the tests drive themselves.

use parking_lot::RwLock;
use std::{fmt, net::SocketAddr, sync::Arc};
use tokio::sync::watch;
use weft_endpoints_index::{EndpointSet, EndpointsIndex, OutboundTarget, ServicePort};

/// The lookups the two APIs make. [`weft_endpoints_index::SharedEndpointsIndex`] implements it;
/// the tests implement it with channels they hold the senders of.
///
/// Both lookups never fail: an unknown Service port is an empty set with `service_exists: false`,
/// an unknown address is [`OutboundTarget::Unknown`], and each receiver changes when the answer
/// does. A sender that is dropped ends the streams that watch it (the proxy asks again).
pub trait EndpointsSource: fmt::Debug + Send + Sync + 'static {
    /// The cluster's DNS domain, e.g. `cluster.local`: Service authorities are
    /// `<name>.<namespace>.svc.<cluster-domain>:<port>`.
    fn cluster_domain(&self) -> String;

    /// The ready endpoints of a Service port.
    fn service_endpoints(&self, service: &ServicePort) -> watch::Receiver<Arc<EndpointSet>>;

    /// What `addr` is: a Service's cluster IP port, a pod's port, or unknown.
    fn outbound_target(&self, addr: SocketAddr) -> watch::Receiver<OutboundTarget>;
}

impl EndpointsSource for Arc<RwLock<EndpointsIndex>> {
    fn cluster_domain(&self) -> String {
        self.read().cluster().cluster_domain.clone()
    }

    fn service_endpoints(&self, service: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        self.read().service_endpoints(service)
    }

    fn outbound_target(&self, addr: SocketAddr) -> watch::Receiver<OutboundTarget> {
        self.read().outbound_target(addr)
    }
}
