//! The index itself. SKELETON: the real implementation replaces these bodies.

use parking_lot::RwLock;
use std::{net::SocketAddr, sync::Arc};
use tokio::sync::watch;

use crate::{EndpointSet, EndpointsIndexMetrics, MeshSettings, OutboundTarget, ServicePort};

/// The index shared between the kubert index tasks (writers) and the gRPC APIs (readers).
pub type SharedEndpointsIndex = Arc<RwLock<EndpointsIndex>>;

/// Services, EndpointSlices and pods, by namespace.
#[derive(Debug)]
pub struct EndpointsIndex {
    mesh: MeshSettings,
    #[allow(dead_code)]
    metrics: EndpointsIndexMetrics,
}

impl EndpointsIndex {
    pub fn new(mesh: MeshSettings, metrics: EndpointsIndexMetrics) -> Self {
        Self { mesh, metrics }
    }

    pub fn shared(mesh: MeshSettings, metrics: EndpointsIndexMetrics) -> SharedEndpointsIndex {
        Arc::new(RwLock::new(Self::new(mesh, metrics)))
    }

    pub fn mesh(&self) -> &MeshSettings {
        &self.mesh
    }

    /// Subscribes to the ready endpoints of a Service port. Never fails: a Service the index
    /// does not know gives `service_exists: false`, and the receiver changes when it appears.
    pub fn service_endpoints(&self, service: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        let _ = service;
        watch::channel(Arc::new(EndpointSet::default())).1
    }

    /// Subscribes to what `addr` is: a Service's cluster IP port, a pod's port, or unknown.
    /// Never fails; the receiver changes when the answer does (a Service or pod appears,
    /// changes or goes).
    pub fn outbound_target(&self, addr: SocketAddr) -> watch::Receiver<OutboundTarget> {
        let _ = addr;
        watch::channel(OutboundTarget::Unknown).1
    }
}
