//! How an EndpointSlice change reaches the index: the Service it belongs to and the pods it names.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use std::collections::{BTreeSet, HashSet};

use crate::{
    key::{removed_keys, ObjKey},
    slice::SliceInfo,
    EndpointsIndex,
};
impl EndpointsIndex {
    /// Applies the slice `key` as `info` (`None`: the slice is gone or ignored).
    fn set_slice(&mut self, key: ObjKey, info: Option<SliceInfo>) {
        if self.state.slices.get(&key) == info.as_ref() {
            return;
        }
        let old = match info {
            Some(info) => {
                for pod in info.pods() {
                    self.state
                        .pod_slices
                        .entry(pod.clone())
                        .or_default()
                        .insert(key.clone());
                }
                self.state
                    .service_slices
                    .entry(ObjKey::new(&key.namespace, &info.service))
                    .or_default()
                    .insert(key.name.clone());
                self.state.slices.insert(key.clone(), info)
            }
            None => self.state.slices.remove(&key),
        };
        let new = self.state.slices.get(&key);
        match (&old, new) {
            (None, Some(_)) => {
                self.metrics.endpoint_slices.inc();
            }
            (Some(_), None) => {
                self.metrics.endpoint_slices.dec();
            }
            _ => {}
        }
        let mut services = BTreeSet::new();
        if let Some(new) = new {
            services.insert(ObjKey::new(&key.namespace, &new.service));
        }
        if let Some(old) = &old {
            let new_pods: HashSet<&ObjKey> = new.into_iter().flat_map(SliceInfo::pods).collect();
            for pod in old.pods().filter(|p| !new_pods.contains(p)) {
                if let Some(slices) = self.state.pod_slices.get_mut(pod) {
                    slices.remove(&key);
                    if slices.is_empty() {
                        self.state.pod_slices.remove(pod);
                    }
                }
            }
            let old_service = ObjKey::new(&key.namespace, &old.service);
            if !services.contains(&old_service) {
                if let Some(slices) = self.state.service_slices.get_mut(&old_service) {
                    slices.remove(&key.name);
                    if slices.is_empty() {
                        self.state.service_slices.remove(&old_service);
                    }
                }
                services.insert(old_service);
            }
        }
        self.update_services(&services);
    }
}

impl IndexNamespacedResource<EndpointSlice> for EndpointsIndex {
    fn apply(&mut self, slice: EndpointSlice) {
        let namespace = slice.namespace().unwrap_or_default();
        let info = SliceInfo::from_slice(&namespace, &slice);
        self.set_slice(ObjKey::new(namespace, slice.name_any()), info);
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_slice(ObjKey::new(namespace, name), None);
    }

    /// After a watch restart: the EndpointSlices kubert saw vanish are removed, then the listed ones (if
    /// any: the controller's watch driver applies them as they arrive) applied.
    fn reset(&mut self, slices: Vec<EndpointSlice>, removed: NamespacedRemoved) {
        for key in removed_keys(removed) {
            self.set_slice(key, None);
        }
        for slice in slices {
            self.apply(slice);
        }
        self.sweep_watches();
    }
}
