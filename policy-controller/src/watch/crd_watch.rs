//! The watch of a resource defined by a CustomResourceDefinition, and how it holds `/ready`.
//!
//! Every such watch waits for its CRD first ([`crd_check`]). Readiness is held by a handle of its
//! own, wrapped in a [`SyncGate`]: released once the first full list of the resource has been
//! indexed, or, for an optional CRD ([`Requirement::Optional`]), as soon as the API server says
//! the CRD is not installed. So a missing optional API group never keeps the controller unready,
//! and a present one is fully indexed before the controller says it is ready.
//!
//! kubert's watch ([`kubert::Runtime::watch_all`]) also holds `/ready`, until it yields its first
//! event, and a watch waiting for its CRD is not polled. [`spawn`] therefore takes the watch's
//! first event at once and replays it when the watch starts: kube's watcher yields that event,
//! `Init` (the start of its first list), before it sends any request (the test below pins this),
//! so nothing reaches the API server and kubert's hold ends immediately. Before this, the
//! HTTPRoute watch of a cluster without the Gateway API CRDs held `/ready` forever.

use super::{
    crd_check::{self, Requirement},
    SyncGate,
};
use futures::{Stream, StreamExt};
use kube::{core::DeserializeGuard, CustomResourceExt, Resource};
use kubert::index::IndexNamespacedResource;
use parking_lot::RwLock;
use std::sync::Arc;

/// Watches `T` into `index` once its CRD is installed, holding `/ready` as `requirement` says
/// (see the module's documentation). Objects that do not deserialize reach the index as errors
/// ([`DeserializeGuard`]) to be skipped there, not as a failed watch.
pub fn spawn<T, I, S: 'static>(
    runtime: &mut kubert::Runtime<S>,
    index: Arc<RwLock<I>>,
    requirement: Requirement,
) where
    T: Resource<DynamicType = ()>
        + CustomResourceExt
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    I: IndexNamespacedResource<DeserializeGuard<T>> + Send + Sync + 'static,
{
    let (client, shutdown) = (runtime.client(), runtime.shutdown_handle());
    let events = super::watch_all::<DeserializeGuard<T>, _>(runtime);
    let mut ready = Some(runtime.initialized_handle());
    tokio::spawn(async move {
        // Ends kubert's own hold on /ready (no request is sent); `ready` holds it from here.
        let Some(events) = with_first_event_taken(events).await else {
            return; // Shutdown began.
        };
        if crd_check::served_before_shutdown::<T>(client, shutdown, requirement, &mut ready).await {
            let gate = SyncGate::holding(index, ready);
            super::index_driver::namespaced(gate, events).await
        }
    });
}

/// Polls `events` for its first event now and returns a stream that yields that event again,
/// then the rest; `None` when `events` has ended.
async fn with_first_event_taken<S>(mut events: S) -> Option<impl Stream<Item = S::Item>>
where
    S: Stream + Unpin,
{
    let first = events.next().await?;
    Some(futures::stream::once(std::future::ready(first)).chain(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The premise of [`spawn`]: a watcher's first event is `Init`, yielded before any request.
    /// The client here counts its requests and fails each one.
    #[tokio::test]
    async fn a_watchers_first_event_is_init_and_sends_no_request() {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let service = tower::service_fn(move |_: http::Request<kube::client::Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<http::Response<kube::client::Body>, _>(
                std::io::Error::other("no API server in this test"),
            ))
        });
        let client = kube::Client::new(service, "default");
        let events = watcher(kube::Api::<ConfigMap>::all(client), Default::default()).boxed();

        let mut events = with_first_event_taken(events)
            .await
            .expect("a watcher's stream does not end")
            .boxed();
        assert_eq!(requests.load(Ordering::SeqCst), 0, "no request before Init");
        assert!(matches!(
            events.next().await,
            Some(Ok(watcher::Event::Init))
        ));
        assert_eq!(
            requests.load(Ordering::SeqCst),
            0,
            "the replay sends nothing"
        );

        // The list itself is the next poll: the first request.
        assert!(matches!(events.next().await, Some(Err(_))));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_first_event_is_replayed_before_the_rest() {
        let events = futures::stream::iter([1, 2, 3]);
        let replayed: Vec<i32> = with_first_event_taken(events)
            .await
            .expect("three events")
            .collect()
            .await;
        assert_eq!(replayed, [1, 2, 3]);
        assert!(with_first_event_taken(futures::stream::empty::<i32>())
            .await
            .is_none());
    }
}
