//! How a Service change reaches the index: its cluster IPs and the watches of its ports and addresses.

use k8s_openapi::api::core::v1::Service;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use std::collections::HashSet;
use std::net::IpAddr;

use crate::{
    key::{removed_keys, ObjKey},
    service::ServiceInfo,
    EndpointsIndex,
};
impl EndpointsIndex {
    fn upsert_service(&mut self, key: ObjKey, service: &Service) {
        let previous = self.state.services.get(&key);
        let (info, invalid) = ServiceInfo::from_service(&key, service, previous);
        if invalid {
            self.metrics.invalid_objects.inc();
        }
        if previous == Some(&info) {
            return;
        }
        let old = self.state.services.insert(key.clone(), info);
        if old.is_none() {
            self.metrics.services.inc();
        }
        self.service_changed(&key, old);
    }

    fn remove_service(&mut self, key: &ObjKey) {
        let Some(old) = self.state.services.remove(key) else {
            return;
        };
        self.metrics.services.dec();
        self.service_changed(key, Some(old));
    }

    /// Updates the cluster IP map and the watches after the Service `key` changed from `old`.
    fn service_changed(&mut self, key: &ObjKey, old: Option<ServiceInfo>) {
        let old_ips = old.map(|s| s.cluster_ips).unwrap_or_default();
        let new_ips = self
            .state
            .services
            .get(key)
            .map(|s| s.cluster_ips.clone())
            .unwrap_or_default();
        self.state.cluster_ips.reclaim(key, &old_ips, &new_ips);
        self.update_services([key]);
        let ips: HashSet<IpAddr> = old_ips.into_iter().chain(new_ips).collect();
        self.update_ips(&ips);
    }
}

impl IndexNamespacedResource<Service> for EndpointsIndex {
    fn apply(&mut self, service: Service) {
        let key = ObjKey::of(&service);
        self.upsert_service(key, &service);
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_service(&ObjKey::new(namespace, name));
    }

    /// After a watch restart: the Services kubert saw vanish are removed, then the listed ones (if
    /// any: the controller's watch driver applies them as they arrive) applied.
    fn reset(&mut self, services: Vec<Service>, removed: NamespacedRemoved) {
        for key in removed_keys(removed) {
            self.remove_service(&key);
        }
        for service in services {
            self.apply(service);
        }
        self.sweep_watches();
    }
}
