//! Services in the index: cluster IPs, TCP ports and opaque ports.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use std::{
    collections::{BTreeMap, HashSet},
    net::IpAddr,
};

use crate::{
    index::{stale_keys, ObjKey},
    opaque::OpaquePorts,
    EndpointsIndex, OPAQUE_PORTS_ANNOTATION,
};

/// What the index keeps of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceInfo {
    /// Cluster IPs; empty for headless and ExternalName Services.
    pub(crate) cluster_ips: Vec<IpAddr>,
    /// TCP ports by number, with their name (`None` when unnamed or empty). Empty for
    /// ExternalName Services, which therefore have no endpoints and no `service_exists`.
    pub(crate) ports: BTreeMap<u16, Option<String>>,
    /// `None` without an annotation: the default opaque ports apply.
    pub(crate) opaque: Option<OpaquePorts>,
    pub(crate) opaque_annotation: Option<String>,
}

impl ServiceInfo {
    /// Extracts what matters of `service`. `previous` avoids re-parsing (and re-logging and
    /// re-counting) an unchanged malformed annotation; the flag tells whether the annotation was
    /// newly found malformed.
    pub(crate) fn from_service(
        key: &ObjKey,
        service: &Service,
        previous: Option<&ServiceInfo>,
    ) -> (Self, bool) {
        let opaque_annotation = service.annotations().get(OPAQUE_PORTS_ANNOTATION).cloned();
        let (opaque, invalid) = match previous {
            Some(prev) if prev.opaque_annotation == opaque_annotation => {
                (prev.opaque.clone(), false)
            }
            _ => OpaquePorts::from_optional_annotation(
                opaque_annotation.as_deref(),
                &format_args!("Service {key}"),
            ),
        };
        let mut info = ServiceInfo {
            cluster_ips: Vec::new(),
            ports: BTreeMap::new(),
            opaque,
            opaque_annotation,
        };
        let Some(spec) = &service.spec else {
            return (info, invalid);
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return (info, invalid);
        }
        let ips = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.iter().collect::<Vec<_>>(),
            _ => spec.cluster_ip.iter().collect(),
        };
        for ip in ips {
            // "None" (headless), "" and anything unparsable are not addresses.
            if let Ok(ip) = ip.parse::<IpAddr>() {
                if !info.cluster_ips.contains(&ip) {
                    info.cluster_ips.push(ip);
                }
            }
        }
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let Some(number) = u16::try_from(port.port).ok().filter(|n| *n != 0) else {
                continue;
            };
            let name = port.name.clone().filter(|n| !n.is_empty());
            info.ports.insert(number, name);
        }
        (info, invalid)
    }
}

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

    /// Replaces all Services: those not listed are removed, then the listed ones applied.
    fn reset(&mut self, services: Vec<Service>, _removed: NamespacedRemoved) {
        let stale = stale_keys(&self.state.services, &services);
        for key in &stale {
            self.remove_service(key);
        }
        for service in services {
            self.apply(service);
        }
        self.sweep_watches();
    }
}
