//! The indexes the controller keeps from its watches: namespaces (for the injection webhook) and,
//! through `weft-policy-index`, inbound policy and, through `weft-endpoints-index`, what meshed
//! proxies resolve outbound; plus the gate that holds readiness until each
//! watch's first full list has been indexed, the wait for a CRD before its watch starts (and how
//! such a watch holds readiness), and the delay between a watch's failed lists.

pub mod crd_check;
pub mod crd_watch;
pub mod fanout;
pub mod index_driver;
pub mod list_backoff;
pub mod namespaces;
pub mod sync_gate;

pub use self::{
    fanout::IndexFanout,
    namespaces::{
        Annotations, NamespaceFanout, NamespaceIndex, NamespaceMetrics, SharedNamespaces,
    },
    sync_gate::SyncGate,
};

use kube::runtime::watcher;

/// kubert's watch of every `T` in the cluster, waiting after each failed list before the next
/// ([`list_backoff::AfterFailedLists`]: kubert alone retries a list that keeps failing at once).
/// Like every kubert watch, it holds `/ready` until its first event.
pub fn watch_all<T, S>(
    runtime: &mut kubert::Runtime<S>,
) -> list_backoff::AfterFailedLists<impl futures::Stream<Item = watcher::Event<T>>>
where
    T: kube::Resource + serde::de::DeserializeOwned + Clone + std::fmt::Debug + Send + 'static,
    T::DynamicType: Default,
{
    list_backoff::AfterFailedLists::new(runtime.watch_all::<T>(watcher::Config::default()))
}
