use super::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::ObjectMeta;
use std::collections::BTreeSet;

/// What the driver did to the index, in order.
#[derive(Debug, Default)]
struct Recorded(Vec<String>);

impl IndexNamespacedResource<ConfigMap> for Recorded {
    fn apply(&mut self, map: ConfigMap) {
        self.0.push(format!(
            "apply {}/{}",
            map.namespace().unwrap_or_default(),
            map.name_any()
        ));
    }

    fn delete(&mut self, namespace: String, name: String) {
        self.0.push(format!("delete {namespace}/{name}"));
    }

    fn reset(&mut self, maps: Vec<ConfigMap>, removed: kubert::index::NamespacedRemoved) {
        let removed: BTreeSet<String> = removed
            .into_iter()
            .flat_map(|(ns, names)| names.into_iter().map(move |n| format!("{ns}/{n}")))
            .collect();
        self.0.push(format!(
            "reset with {} listed, removed {removed:?}",
            maps.len()
        ));
    }
}

impl IndexClusterResource<Namespace> for Recorded {
    fn apply(&mut self, namespace: Namespace) {
        self.0.push(format!("apply {}", namespace.name_any()));
    }

    fn delete(&mut self, name: String) {
        self.0.push(format!("delete {name}"));
    }

    fn reset(&mut self, namespaces: Vec<Namespace>, removed: kubert::index::ClusterRemoved) {
        let removed: BTreeSet<String> = removed.into_iter().collect();
        self.0.push(format!(
            "reset with {} listed, removed {removed:?}",
            namespaces.len()
        ));
    }
}

fn map(namespace: &str, name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn drive_namespaced(events: Vec<Event<ConfigMap>>) -> Vec<String> {
    let index = Arc::new(RwLock::new(Recorded::default()));
    namespaced(index.clone(), futures::stream::iter(events)).await;
    let recorded = mem::take(&mut index.write().0);
    recorded
}

#[tokio::test]
async fn listed_objects_are_applied_as_they_arrive_and_reset_gets_only_the_unlisted() {
    use Event::*;
    let recorded = drive_namespaced(vec![
        Init,
        InitApply(map("a", "one")),
        InitApply(map("b", "two")),
        InitDone,
        Apply(map("a", "three")),
        Delete(map("b", "two")),
        // A relist after the watch was down: `a/one` is gone, `a/three` stays, `c/four` is new.
        Init,
        InitApply(map("a", "three")),
        InitApply(map("c", "four")),
        InitDone,
    ])
    .await;
    assert_eq!(
        recorded,
        [
            "apply a/one",
            "apply b/two",
            "reset with 0 listed, removed {}",
            "apply a/three",
            "delete b/two",
            "apply a/three",
            "apply c/four",
            "reset with 0 listed, removed {\"a/one\"}",
        ]
    );
}

#[tokio::test]
async fn a_list_cut_short_leaves_everything_to_the_next_list() {
    use Event::*;
    let recorded = drive_namespaced(vec![
        Init,
        InitApply(map("a", "one")),
        InitApply(map("a", "two")),
        InitDone,
        // A relist that failed after one object; the watcher starts the list again.
        Init,
        InitApply(map("a", "one")),
        Init,
        InitApply(map("a", "two")),
        InitDone,
    ])
    .await;
    assert_eq!(
        recorded.last().map(String::as_str),
        Some("reset with 0 listed, removed {\"a/one\"}")
    );
}

#[tokio::test]
async fn cluster_objects_are_driven_alike() {
    use Event::*;
    let index = Arc::new(RwLock::new(Recorded::default()));
    let events = vec![
        Init,
        InitApply(namespace("one")),
        InitApply(namespace("two")),
        InitDone,
        Delete(namespace("one")),
        Apply(namespace("three")),
        Init,
        InitApply(namespace("three")),
        InitDone,
    ];
    cluster(index.clone(), futures::stream::iter(events)).await;
    assert_eq!(
        index.read().0,
        [
            "apply one",
            "apply two",
            "reset with 0 listed, removed {}",
            "delete one",
            "apply three",
            "apply three",
            "reset with 0 listed, removed {\"two\"}",
        ]
    );
}
