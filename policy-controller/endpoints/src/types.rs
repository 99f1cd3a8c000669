//! What the index answers: endpoint sets and outbound targets.

use std::{collections::BTreeMap, net::SocketAddr};

use crate::ServicePort;

/// The ready endpoints of one Service port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet {
    /// Whether the Service exists (with this port). `false` for a Service not (yet) created.
    pub service_exists: bool,
    /// Ready endpoints by address (the pod IP and the endpoint's target port).
    pub endpoints: BTreeMap<SocketAddr, Endpoint>,
}

/// One address a client may connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The namespace of the pod (or of the EndpointSlice when it names no pod).
    pub namespace: String,
    /// The pod behind the address, when known.
    pub pod: Option<String>,
    /// The pod's service account, when the pod is known.
    pub service_account: Option<String>,
    /// The mesh identity the client must require: `Some` only when the pod is meshed (it runs
    /// Weft's proxy) and known to the index.
    pub identity: Option<String>,
    /// The port is opaque on the pod: no protocol detection. For a meshed pod, the ports its
    /// proxy was injected with as opaque; otherwise the pod's `config.weft.dev/opaque-ports`, or
    /// the default opaque ports.
    pub opaque: bool,
    /// The endpoint's zone (EndpointSlice `zone`), when set.
    pub zone: Option<String>,
}

/// What an `ip:port` a proxy connects to is, for outbound policy and profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboundTarget {
    /// Not a Service port nor a pod port the index knows: the proxy forwards to it as is.
    Unknown,
    /// A port of a Service's cluster IP: the proxy balances over the Service's endpoints.
    Service {
        service: ServicePort,
        /// The Service's `config.weft.dev/opaque-ports` lists this port, or, without that
        /// annotation, the default opaque ports do.
        opaque: bool,
    },
    /// A port of a pod IP (not a Service): the proxy connects to the pod directly.
    Pod(Endpoint),
}
