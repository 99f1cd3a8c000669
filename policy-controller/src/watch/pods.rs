//! One Pod watch feeds two indexes: the policy index (ports, labels, probes) and the endpoints
//! index (identities and addresses of the pods behind Services).

use k8s_openapi::api::core::v1::Pod;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use parking_lot::RwLock;
use std::sync::Arc;
use weft_endpoints_index::SharedEndpointsIndex;
use weft_policy_index::SharedIndex;

/// Applies every Pod event to both indexes, the policy index first.
#[derive(Debug)]
pub struct PodFanout {
    policy: SharedIndex,
    endpoints: SharedEndpointsIndex,
}

impl PodFanout {
    pub fn shared(policy: SharedIndex, endpoints: SharedEndpointsIndex) -> Arc<RwLock<Self>> {
        Arc::new(RwLock::new(Self { policy, endpoints }))
    }
}

impl IndexNamespacedResource<Pod> for PodFanout {
    fn apply(&mut self, pod: Pod) {
        self.policy.write().apply(pod.clone());
        self.endpoints.write().apply(pod);
    }

    fn delete(&mut self, namespace: String, name: String) {
        IndexNamespacedResource::<Pod>::delete(
            &mut *self.policy.write(),
            namespace.clone(),
            name.clone(),
        );
        IndexNamespacedResource::<Pod>::delete(&mut *self.endpoints.write(), namespace, name);
    }

    fn reset(&mut self, pods: Vec<Pod>, removed: NamespacedRemoved) {
        IndexNamespacedResource::<Pod>::reset(
            &mut *self.policy.write(),
            pods.clone(),
            removed.clone(),
        );
        IndexNamespacedResource::<Pod>::reset(&mut *self.endpoints.write(), pods, removed);
    }
}
