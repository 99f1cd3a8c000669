//! One watch feeds two indexes: Pods and Servers go to the policy index (ports, labels, probes,
//! the Servers' policies) and to the endpoints index (identities and addresses of the pods behind
//! Services, and which of their ports opaque Servers select).

use k8s_openapi::api::core::v1::Pod;
use kube::core::DeserializeGuard;
use kubert::index::{IndexNamespacedResource, NamespacedRemoved};
use parking_lot::RwLock;
use std::sync::Arc;
use weft_endpoints_index::SharedEndpointsIndex;
use weft_policy_index::SharedIndex;
use weft_policy_k8s_api::Server;

/// Applies every event of a watch to both indexes, the policy index first.
#[derive(Debug)]
pub struct IndexFanout {
    policy: SharedIndex,
    endpoints: SharedEndpointsIndex,
}

impl IndexFanout {
    pub fn shared(policy: SharedIndex, endpoints: SharedEndpointsIndex) -> Arc<RwLock<Self>> {
        Arc::new(RwLock::new(Self { policy, endpoints }))
    }
}

impl IndexNamespacedResource<Pod> for IndexFanout {
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

impl IndexNamespacedResource<DeserializeGuard<Server>> for IndexFanout {
    fn apply(&mut self, server: DeserializeGuard<Server>) {
        IndexNamespacedResource::apply(&mut *self.policy.write(), server.clone());
        IndexNamespacedResource::<DeserializeGuard<Server>>::apply(
            &mut *self.endpoints.write(),
            server,
        );
    }

    fn delete(&mut self, namespace: String, name: String) {
        IndexNamespacedResource::<DeserializeGuard<Server>>::delete(
            &mut *self.policy.write(),
            namespace.clone(),
            name.clone(),
        );
        IndexNamespacedResource::<DeserializeGuard<Server>>::delete(
            &mut *self.endpoints.write(),
            namespace,
            name,
        );
    }
}
