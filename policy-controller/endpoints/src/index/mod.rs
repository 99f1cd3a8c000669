//! The index itself: what it keeps of Services, EndpointSlices and pods, the reverse maps that
//! let an update touch only the affected watches, and the two lookups.

use parking_lot::{Mutex, RwLock};
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};
use tokio::sync::watch;
use weft_core::ClusterSettings;

use crate::{
    key::ObjKey, pod::PodInfo, server::OpaqueServer, service::ServiceInfo, slice::SliceInfo,
    watches::Watches, EndpointSet, EndpointsIndexMetrics, OutboundTarget, ServicePort,
};

mod pods;
mod resolve;
mod servers;
mod services;
mod slices;

/// The index shared between the kubert index tasks (writers) and the gRPC APIs (readers).
pub type SharedEndpointsIndex = Arc<RwLock<EndpointsIndex>>;

/// Services, EndpointSlices and pods, and the watches published from them.
///
/// Lookups take `&self` (a read lock on [`SharedEndpointsIndex`]); the kubert index traits
/// (`IndexNamespacedResource<Service | EndpointSlice | Pod>`) take `&mut self`.
#[derive(Debug)]
pub struct EndpointsIndex {
    /// How identities and Services are named, and the default opaque ports.
    pub(crate) cluster: ClusterSettings,
    pub(crate) metrics: EndpointsIndexMetrics,
    pub(crate) state: State,
    /// Behind mutexes only so that lookups through `&self` can add a watch; updates hold
    /// `&mut self` and use `get_mut` without locking.
    pub(crate) endpoint_watches: Mutex<Watches<ObjKey, Arc<EndpointSet>>>,
    pub(crate) target_watches: Mutex<Watches<IpAddr, OutboundTarget>>,
}

/// What the index knows, without the watches.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) services: HashMap<ObjKey, ServiceInfo>,
    pub(crate) slices: HashMap<ObjKey, SliceInfo>,
    /// The slices of each Service (by the `kubernetes.io/service-name` label), by slice name.
    pub(crate) service_slices: HashMap<ObjKey, BTreeSet<String>>,
    pub(crate) pods: HashMap<ObjKey, PodInfo>,
    /// The slices whose endpoints name each pod (known or not), so a pod change recomputes only
    /// the Services that route to it.
    pub(crate) pod_slices: HashMap<ObjKey, HashSet<ObjKey>>,
    pub(crate) cluster_ips: IpOwners,
    /// IPs of pods that can be targets (not hostNetwork, not Succeeded/Failed).
    pub(crate) pod_ips: IpOwners,
    /// Valid Servers with `proxyProtocol: opaque`, by namespace and name.
    pub(crate) opaque_servers: HashMap<String, HashMap<String, OpaqueServer>>,
}

/// Which object owns an IP. When several claim one (a terminated pod's IP reused, a Service
/// recreated), the one that claimed it last owns it; when it lets go, the previous claimant
/// owns it again.
#[derive(Debug, Default)]
pub(crate) struct IpOwners {
    by_ip: HashMap<IpAddr, Vec<ObjKey>>,
}

impl IpOwners {
    pub(crate) fn owner(&self, ip: &IpAddr) -> Option<&ObjKey> {
        self.by_ip.get(ip).and_then(|keys| keys.last())
    }

    /// `key` claims `ip` (the latest claim wins); claiming again does not reorder.
    pub(crate) fn claim(&mut self, ip: IpAddr, key: &ObjKey) {
        let keys = self.by_ip.entry(ip).or_default();
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    pub(crate) fn release(&mut self, ip: &IpAddr, key: &ObjKey) {
        if let Some(keys) = self.by_ip.get_mut(ip) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_ip.remove(ip);
            }
        }
    }

    /// Moves `key`'s claims from `old` to `new`: released IPs first, then new claims. IPs in
    /// both keep their order.
    pub(crate) fn reclaim(&mut self, key: &ObjKey, old: &[IpAddr], new: &[IpAddr]) {
        for ip in old.iter().filter(|ip| !new.contains(ip)) {
            self.release(ip, key);
        }
        for ip in new {
            self.claim(*ip, key);
        }
    }
}

impl EndpointsIndex {
    pub fn new(cluster: ClusterSettings, metrics: EndpointsIndexMetrics) -> Self {
        Self {
            endpoint_watches: Mutex::new(Watches::new(metrics.watched_service_ports.clone())),
            target_watches: Mutex::new(Watches::new(metrics.watched_addresses.clone())),
            cluster,
            metrics,
            state: State::default(),
        }
    }

    pub fn shared(
        cluster: ClusterSettings,
        metrics: EndpointsIndexMetrics,
    ) -> SharedEndpointsIndex {
        Arc::new(RwLock::new(Self::new(cluster, metrics)))
    }

    pub fn cluster(&self) -> &ClusterSettings {
        &self.cluster
    }

    pub fn metrics(&self) -> &EndpointsIndexMetrics {
        &self.metrics
    }

    /// Subscribes to the ready endpoints of a Service port. Never fails: a Service the index
    /// does not know gives `service_exists: false`, and the receiver changes when it appears.
    ///
    /// `service_exists` is true only while the Service exists, is not `ExternalName`, and has
    /// a TCP port numbered `service.port`; otherwise the set is empty.
    pub fn service_endpoints(&self, service: &ServicePort) -> watch::Receiver<Arc<EndpointSet>> {
        let key = ObjKey::new(&service.namespace, &service.name);
        let init = || Arc::new(self.state.endpoint_set(&self.cluster, &key, service.port));
        self.endpoint_watches
            .lock()
            .subscribe(key.clone(), service.port, init)
    }

    /// Subscribes to what `addr` is: a Service's cluster IP port, a pod's port, or unknown.
    /// Never fails; the receiver changes when the answer does (a Service or pod appears,
    /// changes or goes).
    pub fn outbound_target(&self, addr: SocketAddr) -> watch::Receiver<OutboundTarget> {
        let init = || self.state.outbound_target(&self.cluster, addr);
        self.target_watches
            .lock()
            .subscribe(addr.ip(), addr.port(), init)
    }

    /// Drops every watch without receivers now (updates and lookups also do it as they go).
    pub fn sweep_watches(&mut self) {
        self.endpoint_watches.get_mut().sweep();
        self.target_watches.get_mut().sweep();
    }

    /// Recomputes the watched ports of the Services `keys`.
    pub(crate) fn update_services<'k>(&mut self, keys: impl IntoIterator<Item = &'k ObjKey>) {
        let Self {
            cluster,
            state,
            endpoint_watches,
            ..
        } = self;
        let watches = endpoint_watches.get_mut();
        for key in keys {
            watches.update(key, |port| Arc::new(state.endpoint_set(cluster, key, port)));
        }
    }

    /// Recomputes the watched addresses at `ips`.
    pub(crate) fn update_ips<'i>(&mut self, ips: impl IntoIterator<Item = &'i IpAddr>) {
        let Self {
            cluster,
            state,
            target_watches,
            ..
        } = self;
        let watches = target_watches.get_mut();
        for ip in ips {
            watches.update(ip, |port| {
                state.outbound_target(cluster, SocketAddr::new(*ip, port))
            });
        }
    }
}
