//! The key of a namespaced object in the index.

use kubert::index::NamespacedRemoved;
use std::fmt;

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

/// The keys kubert's `reset` names as removed (those not listed again after a watch restart).
pub(crate) fn removed_keys(removed: NamespacedRemoved) -> impl Iterator<Item = ObjKey> {
    removed.into_iter().flat_map(|(namespace, names)| {
        names
            .into_iter()
            .map(move |name| ObjKey::new(namespace.clone(), name))
    })
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
