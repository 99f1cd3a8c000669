//! Drives an index from a watch's events without holding a whole list in memory.
//!
//! kubert's `index::namespaced` and `index::cluster` collect every object of a (re)list and hand
//! the index the complete `Vec` at its end, so the full objects of the whole cluster (a pod with
//! its managed fields is tens of KiB) are alive at once: with 2,000 pods that peak set the
//! controller's RSS (BENCHMARKS.md, section 8). Here each listed object is applied as it arrives,
//! converted at once to what the index keeps, and at the list's end the index's `reset` gets only
//! the keys of the objects that were not listed again (`resources` is always empty). An index's
//! `reset` must therefore delete the `removed` keys rather than derive them from `resources`
//! (the default implementations of kubert's traits do exactly that).
//!
//! What a reader of the index sees during a relist differs from kubert's: objects are updated
//! one by one as listed, and those deleted while the watch was down go at the list's end (kubert
//! removed them first and applied the list at once).

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use futures::{Stream, StreamExt};
use kube::{runtime::watcher::Event, Resource, ResourceExt};
use kubert::index::{IndexClusterResource, IndexNamespacedResource};
use parking_lot::RwLock;
use std::{mem, sync::Arc};

/// Applies a watch of namespaced objects to `index` until the watch ends.
pub async fn namespaced<T, I>(index: Arc<RwLock<I>>, events: impl Stream<Item = Event<T>>)
where
    T: Resource,
    I: IndexNamespacedResource<T>,
{
    let mut keys = NamespacedKeys::default();
    tokio::pin!(events);
    while let Some(event) = events.next().await {
        let mut index = index.write();
        match event {
            Event::Apply(object) | Event::InitApply(object) => {
                let (namespace, name) = namespaced_key(&object);
                keys.listed(namespace, name);
                index.apply(object);
            }
            Event::Delete(object) => {
                let (namespace, name) = namespaced_key(&object);
                keys.deleted(&namespace, &name);
                index.delete(namespace, name);
            }
            Event::Init => keys.list_started(),
            Event::InitDone => index.reset(Vec::new(), keys.list_done()),
        }
    }
}

/// Applies a watch of cluster-scoped objects to `index` until the watch ends.
pub async fn cluster<T, I>(index: Arc<RwLock<I>>, events: impl Stream<Item = Event<T>>)
where
    T: Resource,
    I: IndexClusterResource<T>,
{
    let mut keys = ClusterKeys::default();
    tokio::pin!(events);
    while let Some(event) = events.next().await {
        let mut index = index.write();
        match event {
            Event::Apply(object) | Event::InitApply(object) => {
                keys.listed(object.name_any());
                index.apply(object);
            }
            Event::Delete(object) => {
                let name = object.name_any();
                keys.deleted(&name);
                index.delete(name);
            }
            Event::Init => keys.list_started(),
            Event::InitDone => index.reset(Vec::new(), keys.list_done()),
        }
    }
}

fn namespaced_key<T: Resource>(object: &T) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// The keys of the objects an index holds, and during a list those not listed (yet).
#[derive(Debug, Default)]
struct NamespacedKeys {
    known: HashMap<String, HashSet<String>>,
    unlisted: HashMap<String, HashSet<String>>,
}

impl NamespacedKeys {
    fn list_started(&mut self) {
        // A list that started before and never finished left its keys in `known` too: they
        // are all candidates for removal again.
        for (namespace, names) in mem::take(&mut self.known) {
            self.unlisted.entry(namespace).or_default().extend(names);
        }
    }

    fn listed(&mut self, namespace: String, name: String) {
        if let Some(names) = self.unlisted.get_mut(&namespace) {
            names.remove(&name);
            if names.is_empty() {
                self.unlisted.remove(&namespace);
            }
        }
        self.known.entry(namespace).or_default().insert(name);
    }

    fn deleted(&mut self, namespace: &str, name: &str) {
        if let Some(names) = self.known.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                self.known.remove(namespace);
            }
        }
    }

    fn list_done(&mut self) -> HashMap<String, HashSet<String>> {
        mem::take(&mut self.unlisted)
    }
}

#[derive(Debug, Default)]
struct ClusterKeys {
    known: HashSet<String>,
    unlisted: HashSet<String>,
}

impl ClusterKeys {
    fn list_started(&mut self) {
        self.unlisted.extend(mem::take(&mut self.known));
    }

    fn listed(&mut self, name: String) {
        self.unlisted.remove(&name);
        self.known.insert(name);
    }

    fn deleted(&mut self, name: &str) {
        self.known.remove(name);
    }

    fn list_done(&mut self) -> HashSet<String> {
        mem::take(&mut self.unlisted)
    }
}

#[cfg(test)]
#[path = "index_driver_tests.rs"]
mod tests;
