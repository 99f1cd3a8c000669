//! The key of a namespaced object in the index.

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

/// A namespaced object's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjKey {
    pub(crate) fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a namespaced object.
    pub(crate) fn of(object: &impl kube::ResourceExt) -> Self {
        Self::new(object.namespace().unwrap_or_default(), object.name_any())
    }
}

/// The keys of `known` that are not among `listed`: what a resync removes.
pub(crate) fn stale_keys<V, T: kube::ResourceExt>(
    known: &HashMap<ObjKey, V>,
    listed: &[T],
) -> Vec<ObjKey> {
    let live: HashSet<ObjKey> = listed.iter().map(ObjKey::of).collect();
    known
        .keys()
        .filter(|k| !live.contains(*k))
        .cloned()
        .collect()
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
