//! Readiness that means "synced": an index wrapper that holds a kubert initialization handle until
//! the first complete list of its resource has been applied.
//!
//! kubert releases a watch's own handle on the watch's first event, which is the *start* of the
//! initial list. Wrapping an index in a [`SyncGate`] keeps `/ready` false until the list has been
//! fully applied (kubert calls `reset` at `InitDone`), so a ready controller has a complete view.

use kubert::{
    index::{ClusterRemoved, IndexClusterResource, IndexNamespacedResource, NamespacedRemoved},
    initialized,
};
use parking_lot::RwLock;
use std::sync::Arc;

/// Forwards index updates to `inner` and releases `handle` after the first reset.
#[derive(Debug)]
pub struct SyncGate<I> {
    inner: Arc<RwLock<I>>,
    handle: Option<initialized::Handle>,
}

impl<I> SyncGate<I> {
    pub fn new(inner: Arc<RwLock<I>>, handle: initialized::Handle) -> Arc<RwLock<Self>> {
        Self::holding(inner, Some(handle))
    }

    /// A gate holding `handle` if there is one (a watch whose readiness was released before it
    /// started has none: it forwards updates and holds nothing).
    pub fn holding(
        inner: Arc<RwLock<I>>,
        handle: Option<initialized::Handle>,
    ) -> Arc<RwLock<Self>> {
        Arc::new(RwLock::new(Self { inner, handle }))
    }

    fn synced(&mut self) {
        if self.handle.take().is_some() {
            tracing::debug!(index = std::any::type_name::<I>(), "Index synced");
        }
    }
}

impl<I, T> IndexClusterResource<T> for SyncGate<I>
where
    I: IndexClusterResource<T>,
{
    fn apply(&mut self, resource: T) {
        self.inner.write().apply(resource);
    }

    fn delete(&mut self, name: String) {
        IndexClusterResource::<T>::delete(&mut *self.inner.write(), name);
    }

    fn reset(&mut self, resources: Vec<T>, removed: ClusterRemoved) {
        self.inner.write().reset(resources, removed);
        self.synced();
    }
}

impl<I, T> IndexNamespacedResource<T> for SyncGate<I>
where
    I: IndexNamespacedResource<T>,
{
    fn apply(&mut self, resource: T) {
        self.inner.write().apply(resource);
    }

    fn delete(&mut self, namespace: String, name: String) {
        IndexNamespacedResource::<T>::delete(&mut *self.inner.write(), namespace, name);
    }

    fn reset(&mut self, resources: Vec<T>, removed: NamespacedRemoved) {
        self.inner.write().reset(resources, removed);
        self.synced();
    }
}
