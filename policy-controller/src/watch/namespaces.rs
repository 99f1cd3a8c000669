//! The namespace index: the annotations of every namespace, so the injection webhook can decide
//! without an API call per request.

use ahash::AHashMap as HashMap;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kubert::index::{ClusterRemoved, IndexClusterResource};
use parking_lot::RwLock;
use prometheus_client::metrics::gauge::Gauge;
use std::{collections::BTreeMap, sync::Arc};
use weft_injector::INJECT_ANNOTATION;

pub type Annotations = Arc<BTreeMap<String, String>>;
pub type SharedNamespaces = Arc<RwLock<NamespaceIndex>>;

/// Namespace name → its annotations, kept current by a watch on all namespaces.
#[derive(Debug, Default)]
pub struct NamespaceIndex {
    namespaces: HashMap<String, Namespaced>,
    metrics: NamespaceMetrics,
}

#[derive(Debug)]
struct Namespaced {
    annotations: Annotations,
    invalid_inject_value: bool,
}

/// Gauges that describe the namespace index.
#[derive(Clone, Debug, Default)]
pub struct NamespaceMetrics {
    indexed: Gauge,
    invalid_inject_annotation: Gauge,
}

// === impl NamespaceIndex ===

impl NamespaceIndex {
    pub fn shared(metrics: NamespaceMetrics) -> SharedNamespaces {
        Arc::new(RwLock::new(Self {
            namespaces: HashMap::default(),
            metrics,
        }))
    }

    /// The annotations of `namespace`, or `None` when the namespace is not (yet) known.
    pub fn annotations(&self, namespace: &str) -> Option<Annotations> {
        self.namespaces
            .get(namespace)
            .map(|ns| ns.annotations.clone())
    }

    pub fn len(&self) -> usize {
        self.namespaces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    fn update_gauges(&self) {
        self.metrics.indexed.set(self.namespaces.len() as i64);
        let invalid = self
            .namespaces
            .values()
            .filter(|ns| ns.invalid_inject_value)
            .count();
        self.metrics.invalid_inject_annotation.set(invalid as i64);
    }
}

impl IndexClusterResource<Namespace> for NamespaceIndex {
    fn apply(&mut self, namespace: Namespace) {
        let name = namespace.name_unchecked();
        let annotations = namespace.metadata.annotations.unwrap_or_default();
        let invalid_inject_value = match weft_core::linkerd::lookup(&annotations, INJECT_ANNOTATION)
        {
            Some(found) if found.value != "enabled" && found.value != "disabled" => {
                tracing::warn!(
                    namespace = %name,
                    annotation = found.key,
                    value = found.value,
                    "Invalid namespace annotation: pods in this namespace are not injected unless they opt in; accepted values are enabled, disabled",
                );
                true
            }
            _ => false,
        };
        let unchanged = self
            .namespaces
            .get(&name)
            .is_some_and(|ns| *ns.annotations == annotations);
        if !unchanged {
            self.namespaces.insert(
                name,
                Namespaced {
                    annotations: Arc::new(annotations),
                    invalid_inject_value,
                },
            );
        }
        self.update_gauges();
    }

    fn delete(&mut self, name: String) {
        self.namespaces.remove(&name);
        self.update_gauges();
    }

    fn reset(&mut self, namespaces: Vec<Namespace>, removed: ClusterRemoved) {
        for name in removed {
            self.namespaces.remove(&name);
        }
        for namespace in namespaces {
            self.apply(namespace);
        }
    }
}

/// Feeds one namespace watch to both the namespace index and the policy index.
#[derive(Debug)]
pub struct NamespaceFanout {
    namespaces: SharedNamespaces,
    policy: weft_policy_index::SharedIndex,
}

impl NamespaceFanout {
    pub fn shared(
        namespaces: SharedNamespaces,
        policy: weft_policy_index::SharedIndex,
    ) -> Arc<RwLock<Self>> {
        Arc::new(RwLock::new(Self { namespaces, policy }))
    }
}

impl IndexClusterResource<Namespace> for NamespaceFanout {
    fn apply(&mut self, namespace: Namespace) {
        self.policy.write().apply(namespace.clone());
        self.namespaces.write().apply(namespace);
    }

    fn delete(&mut self, name: String) {
        IndexClusterResource::<Namespace>::delete(&mut *self.policy.write(), name.clone());
        IndexClusterResource::<Namespace>::delete(&mut *self.namespaces.write(), name);
    }

    fn reset(&mut self, namespaces: Vec<Namespace>, removed: ClusterRemoved) {
        self.policy
            .write()
            .reset(namespaces.clone(), removed.clone());
        self.namespaces.write().reset(namespaces, removed);
    }
}

// === impl NamespaceMetrics ===

impl NamespaceMetrics {
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "indexed_namespaces",
            "Namespaces the controller currently knows",
            metrics.indexed.clone(),
        );
        registry.register(
            "namespaces_invalid_inject_annotation",
            "Namespaces whose weft.dev/inject annotation is neither enabled nor disabled (their pods are not injected unless they opt in)",
            metrics.invalid_inject_annotation.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn mk_ns(name: &str, annotations: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn apply_delete_and_reset() {
        let index = NamespaceIndex::shared(NamespaceMetrics::default());
        let mut idx = index.write();
        idx.apply(mk_ns("shop", &[("weft.dev/inject", "enabled")]));
        idx.apply(mk_ns("bad", &[("weft.dev/inject", "yes")]));
        assert_eq!(
            idx.annotations("shop").expect("shop is indexed")["weft.dev/inject"],
            "enabled"
        );
        assert_eq!(idx.metrics.invalid_inject_annotation.get(), 1);
        assert_eq!(idx.metrics.indexed.get(), 2);

        idx.apply(mk_ns("shop", &[("weft.dev/inject", "disabled")]));
        assert_eq!(
            idx.annotations("shop").expect("shop is indexed")["weft.dev/inject"],
            "disabled"
        );

        idx.delete("bad".to_string());
        assert!(idx.annotations("bad").is_none());
        assert_eq!(idx.metrics.invalid_inject_annotation.get(), 0);

        // A re-list after a watch restart: `shop` was deleted meanwhile and `new` appeared.
        let removed = ["shop".to_string()].into_iter().collect();
        idx.reset(vec![mk_ns("new", &[])], removed);
        assert!(idx.annotations("shop").is_none());
        assert!(idx.annotations("new").is_some());
        assert_eq!(idx.len(), 1);
    }
}
