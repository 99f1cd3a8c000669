//! Namespaces in the index: only their default-policy override matters.

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kubert::index::IndexClusterResource;

use crate::{defaults::PolicyOverride, Index, DEFAULT_POLICY_ANNOTATION};

impl Index {
    fn set_namespace_override(&mut self, namespace: &str, annotation: Option<&str>) {
        let current = self
            .namespaces
            .get(namespace)
            .map(|ns| &ns.default_override);
        // Parse before comparing so an invalid value is reported when it first appears, and
        // compare so that unchanged namespaces (most updates) cost nothing more.
        let parsed = match (current, annotation) {
            (None | Some(PolicyOverride::Unset), None) => return,
            _ => PolicyOverride::parse(annotation, &format_args!("namespace {namespace}")),
        };
        let ns = self.namespace_mut(namespace);
        if ns.default_override == parsed {
            return;
        }
        ns.default_override = parsed;
        let all: Vec<String> = ns.pods.keys().cloned().collect();
        self.update_pods(namespace, &all);
    }
}

impl IndexClusterResource<Namespace> for Index {
    fn apply(&mut self, namespace: Namespace) {
        let name = namespace.name_any();
        // Weft's spelling, or Linkerd's (`config.linkerd.io/default-inbound-policy`).
        let annotation =
            weft_core::linkerd::value(namespace.annotations(), DEFAULT_POLICY_ANNOTATION);
        self.set_namespace_override(&name, annotation);
    }

    fn delete(&mut self, name: String) {
        self.set_namespace_override(&name, None);
    }
}
