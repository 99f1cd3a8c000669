//! kubert re-list semantics: after a watch restarts, the listed objects replace the state and
//! objects that vanished meanwhile disappear. Driven through kubert's own index loop.

use super::*;
use futures::stream;
use kube::runtime::watcher::Event;
use parking_lot::RwLock;
use std::sync::Arc;

/// Feeds `events` to one long-lived kubert index loop, as a restarting watch would.
fn index_loop<R>(index: &Arc<RwLock<Index>>) -> tokio::sync::mpsc::UnboundedSender<Event<R>>
where
    R: kube::Resource + std::fmt::Debug + Send + 'static,
    Index: IndexNamespacedResource<R>,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let events = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    tokio::spawn(kubert::index::namespaced(index.clone(), events));
    tx
}

/// Lets the index loops run until `done` holds (bounded, so a bug cannot hang the test).
async fn settle(index: &Arc<RwLock<Index>>, done: impl Fn(&Index) -> bool) {
    for _ in 0..10_000 {
        if done(&index.read()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the index did not reach the expected state");
}

#[tokio::test]
async fn relist_replaces_servers_and_pods() {
    let index = Arc::new(RwLock::new(mk_index(DefaultPolicy::Deny)));
    let pods = index_loop::<Pod>(&index);
    let servers = index_loop::<Server>(&index);

    for event in [
        Event::Init,
        Event::InitApply(mk_pod("ns", "a", &[], &[(None, 80)])),
        Event::InitApply(mk_pod("ns", "b", &[], &[(None, 80)])),
        Event::InitDone,
    ] {
        pods.send(event).unwrap();
    }
    for event in [
        Event::Init,
        Event::InitApply(mk_server("ns", "old", &[], json!(80), "HTTP/1", 1)),
        Event::InitDone,
    ] {
        servers.send(event).unwrap();
    }
    settle(&index, |i| {
        i.metrics().pods() == 2 && i.metrics().servers() == 1
    })
    .await;

    let rx_a = watch(&index.read(), "ns", "a", 80);
    let mut rx_b = watch(&index.read(), "ns", "b", 80);
    assert_eq!(server_of(&rx_a), named("old"));

    // The watches restart: "old" was deleted and "new" created while disconnected; pod b is gone.
    for event in [
        Event::Init,
        Event::InitApply(mk_server("ns", "new", &[], json!(80), "gRPC", 2)),
        Event::InitDone,
    ] {
        servers.send(event).unwrap();
    }
    for event in [
        Event::Init,
        Event::InitApply(mk_pod("ns", "a", &[], &[(None, 80)])),
        Event::InitDone,
    ] {
        pods.send(event).unwrap();
    }
    settle(&index, |i| {
        i.metrics().pods() == 1 && server_of(&rx_a) == named("new")
    })
    .await;

    assert_eq!(protocol(&rx_a), ProxyProtocol::Grpc);
    assert_eq!(index.read().metrics().servers(), 1);
    // b saw the Server change before it was removed; after that, its channel is closed.
    assert_eq!(server_of(&rx_b), named("new"));
    rx_b.mark_unchanged();
    assert!(
        rx_b.changed().await.is_err(),
        "pod b vanished in the re-list"
    );
    assert!(index.read().pod_port_policy("ns", "b", 80).is_err());
}

#[tokio::test]
async fn relist_of_namespaces_drops_vanished_overrides() {
    let index = Arc::new(RwLock::new(mk_index(DefaultPolicy::AllUnauthenticated)));
    IndexNamespacedResource::<Pod>::apply(
        &mut *index.write(),
        mk_pod("ns", "p", &[], &[(None, 80)]),
    );
    let events = vec![
        Event::Init,
        Event::InitApply(mk_namespace("ns", Some("deny"))),
        Event::InitDone,
        Event::Init,
        Event::InitApply(mk_namespace("unrelated", None)),
        Event::InitDone,
    ];
    kubert::index::cluster(index.clone(), stream::iter(events)).await;
    assert_eq!(
        server_of(&watch(&index.read(), "ns", "p", 80)),
        default_ref(DefaultPolicy::AllUnauthenticated)
    );
}
