//! Gateway API HTTPRoutes in the index: those naming Weft Servers as parents, reduced to what
//! the proxy enforces. Routes of other implementations are not kept.

use kube::{core::DeserializeGuard, ResourceExt};
use kubert::index::IndexNamespacedResource;
use std::sync::Arc;
use weft_policy_k8s_api::{
    http_route::{self, ServerRoute},
    HTTPRoute, PolicyTarget,
};

use crate::Index;

/// What the index keeps of a valid HTTPRoute with Weft Server parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteInfo {
    /// The Servers (in the route's namespace) the route attaches to; sorted.
    pub(crate) servers: Vec<String>,
    /// Shared with the policies of every pod port the route applies to.
    pub(crate) route: Arc<ServerRoute>,
}

impl RouteInfo {
    fn from_resource(route: &HTTPRoute, namespace: &str) -> Result<Option<Self>, String> {
        let servers = http_route::server_parents(&route.spec, namespace);
        if servers.is_empty() {
            return Ok(None);
        }
        let route = http_route::server_route(&route.spec, namespace).map_err(|e| e.to_string())?;
        Ok(Some(Self {
            servers,
            route: Arc::new(route),
        }))
    }
}

impl Index {
    fn set_route(&mut self, namespace: &str, name: &str, route: Option<RouteInfo>) {
        let routes = &mut self.namespace_mut(namespace).http_routes;
        let old = match &route {
            Some(r) if routes.get(name) == Some(r) => return,
            Some(r) => routes.insert(name.to_string(), r.clone()),
            None => routes.remove(name),
        };
        match (&old, &route) {
            (None, Some(_)) => self.metrics.http_routes.inc(),
            (Some(_), None) => self.metrics.http_routes.dec(),
            _ => 0,
        };
        let targets: Vec<PolicyTarget> = [old, route]
            .into_iter()
            .flatten()
            .flat_map(|r| r.servers)
            .map(PolicyTarget::Server)
            .collect();
        self.update_targets(namespace, &targets);
    }
}

impl IndexNamespacedResource<DeserializeGuard<HTTPRoute>> for Index {
    fn apply(&mut self, guard: DeserializeGuard<HTTPRoute>) {
        let namespace = guard.namespace().unwrap_or_default();
        let name = guard.name_any();
        let result = guard
            .0
            .map_err(|invalid| invalid.error)
            .and_then(|route| RouteInfo::from_resource(&route, &namespace));
        match result {
            Ok(route) => self.set_route(&namespace, &name, route),
            Err(error) => {
                self.skip_invalid("HTTPRoute", &namespace, &name, &error);
                self.set_route(&namespace, &name, None);
            }
        }
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_route(&namespace, &name, None);
    }
}

impl IndexNamespacedResource<HTTPRoute> for Index {
    fn apply(&mut self, route: HTTPRoute) {
        IndexNamespacedResource::apply(self, DeserializeGuard(Ok(route)));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.set_route(&namespace, &name, None);
    }
}
