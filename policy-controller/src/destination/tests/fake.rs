//! An [`EndpointsSource`] whose answers the tests set, and test values of the index's types.

use crate::destination::EndpointsSource;
use parking_lot::Mutex;
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::Arc,
};
use tokio::sync::watch;
use weft_endpoints_index::{Endpoint, EndpointSet, OutboundTarget, ServicePort};

pub(crate) const CLUSTER_DOMAIN: &str = "cluster.local";

/// Holds the senders of every channel it handed out; like the index, it wakes receivers only
/// when the value changes, unless a test [`FakeSource::touch_endpoints`] on purpose.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeSource(Arc<Mutex<Channels>>);

#[derive(Debug, Default)]
struct Channels {
    services: HashMap<ServicePort, watch::Sender<Arc<EndpointSet>>>,
    targets: HashMap<SocketAddr, watch::Sender<OutboundTarget>>,
}

impl FakeSource {
    pub(crate) fn set_endpoints(&self, service: &ServicePort, set: EndpointSet) {
        let mut channels = self.0.lock();
        let sender = channels
            .services
            .entry(service.clone())
            .or_insert_with(|| watch::Sender::new(Arc::new(EndpointSet::default())));
        sender.send_if_modified(|current| {
            let modified = **current != set;
            *current = Arc::new(set);
            modified
        });
    }

    /// Wakes the receivers of `service` without changing its endpoints.
    pub(crate) fn touch_endpoints(&self, service: &ServicePort) {
        if let Some(sender) = self.0.lock().services.get(service) {
            sender.send_modify(|_| {});
        }
    }

    /// Drops the sender of `service`, as the index does when it forgets a Service port.
    pub(crate) fn forget_service(&self, service: &ServicePort) {
        self.0.lock().services.remove(service);
    }

    pub(crate) fn set_target(&self, addr: SocketAddr, target: OutboundTarget) {
        let mut channels = self.0.lock();
        let sender = channels
            .targets
            .entry(addr)
            .or_insert_with(|| watch::Sender::new(OutboundTarget::Unknown));
        sender.send_if_modified(|current| {
            let modified = *current != target;
            *current = target;
            modified
        });
    }
}

impl EndpointsSource for FakeSource {
    fn cluster_domain(&self) -> String {
        CLUSTER_DOMAIN.to_string()
    }

    fn service_endpoints(&self, service: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        self.0
            .lock()
            .services
            .entry(service.clone())
            .or_insert_with(|| watch::Sender::new(Arc::new(EndpointSet::default())))
            .subscribe()
    }

    fn outbound_target(&self, addr: SocketAddr) -> watch::Receiver<OutboundTarget> {
        self.0
            .lock()
            .targets
            .entry(addr)
            .or_insert_with(|| watch::Sender::new(OutboundTarget::Unknown))
            .subscribe()
    }
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) fn service(namespace: &str, name: &str, port: u16) -> ServicePort {
    ServicePort {
        namespace: namespace.into(),
        name: name.into(),
        port,
    }
}

/// The identity the index gives a meshed pod running as `sa` in `ns`.
pub(crate) fn identity(sa: &str, ns: &str) -> String {
    format!("{sa}.{ns}.serviceaccount.identity.weft.cluster.local")
}

/// A meshed pod `pod` in `ns`, service account `web`, zone `z1`.
pub(crate) fn meshed(addr: &str, ns: &str, pod: &str) -> Endpoint {
    Endpoint {
        addr: self::addr(addr),
        namespace: ns.into(),
        pod: Some(pod.into()),
        service_account: Some("web".into()),
        identity: Some(identity("web", ns)),
        opaque: false,
        zone: Some("z1".into()),
    }
}

/// An endpoint of no pod the index knows (an EndpointSlice entry without a pod).
pub(crate) fn unmeshed(addr: &str, ns: &str) -> Endpoint {
    Endpoint {
        addr: self::addr(addr),
        namespace: ns.into(),
        pod: None,
        service_account: None,
        identity: None,
        opaque: false,
        zone: None,
    }
}

pub(crate) fn set(endpoints: impl IntoIterator<Item = Endpoint>) -> EndpointSet {
    EndpointSet {
        service_exists: true,
        endpoints: endpoints
            .into_iter()
            .map(|e| (e.addr, e))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A Service that exists with no ready endpoint (`exists: true`) or does not exist.
pub(crate) fn empty(exists: bool) -> EndpointSet {
    EndpointSet {
        service_exists: exists,
        endpoints: BTreeMap::new(),
    }
}
