//! How a pod change reaches the index: its IPs and the watches of the Services and addresses it backs.

use k8s_openapi::api::core::v1::Pod;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use crate::{
    key::{removed_keys, ObjKey},
    pod::PodInfo,
    EndpointsIndex,
};
impl EndpointsIndex {
    fn upsert_pod(&mut self, key: ObjKey, pod: &Pod) {
        let previous = self.state.pods.get(&key);
        let (mut info, invalid) = PodInfo::from_pod(&key, pod, previous);
        info.server_opaque = self.state.server_opaque_ports(&key.namespace, &info);
        if invalid {
            self.metrics.invalid_objects.inc();
        }
        if previous == Some(&info) {
            return; // e.g. a status update that changes nothing the index keeps
        }
        let old = self.state.pods.insert(key.clone(), info);
        if old.is_none() {
            self.metrics.pods.inc();
        }
        self.pod_changed(&key, old);
    }

    fn remove_pod(&mut self, key: &ObjKey) {
        let Some(old) = self.state.pods.remove(key) else {
            return;
        };
        self.metrics.pods.dec();
        self.pod_changed(key, Some(old));
    }

    /// Updates the pod IP map and the watches after the pod `key` changed from `old`: the
    /// Services whose slices name the pod, and the addresses at its old and new IPs.
    pub(super) fn pod_changed(&mut self, key: &ObjKey, old: Option<PodInfo>) {
        let old_ips = old.as_ref().map(PodInfo::target_ips).unwrap_or_default();
        let new = self.state.pods.get(key);
        let new_ips = new.map(PodInfo::target_ips).unwrap_or_default();
        self.state.pod_ips.reclaim(key, old_ips, new_ips);
        let mut ips: HashSet<IpAddr> = old_ips.iter().copied().collect();
        ips.extend(new_ips);
        let services: BTreeSet<ObjKey> = self
            .state
            .pod_slices
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|slice| {
                let info = self.state.slices.get(slice)?;
                Some(ObjKey::new(&slice.namespace, &info.service))
            })
            .collect();
        self.update_services(&services);
        self.update_ips(&ips);
    }
}

impl IndexNamespacedResource<Pod> for EndpointsIndex {
    fn apply(&mut self, pod: Pod) {
        let key = ObjKey::of(&pod);
        self.upsert_pod(key, &pod);
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.remove_pod(&ObjKey::new(namespace, name));
    }

    /// After a watch restart: the pods kubert saw vanish are removed, then the listed ones (if
    /// any: the controller's watch driver applies them as they arrive) applied.
    fn reset(&mut self, pods: Vec<Pod>, removed: NamespacedRemoved) {
        for key in removed_keys(removed) {
            self.remove_pod(&key);
        }
        for pod in pods {
            self.apply(pod);
        }
        self.sweep_watches();
    }
}
