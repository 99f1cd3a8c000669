//! Servers that make ports opaque: `proxyProtocol: opaque` on a `policy.weft.dev` Server.
//!
//! A meshed pod's proxy treats a port as opaque when its inbound policy says so, and a Server
//! with `proxyProtocol: opaque` says so for the ports it selects, with or without the
//! `config.weft.dev/opaque-ports` annotation. A client proxy must then reach that port through
//! the server proxy's inbound port with the opaque transport (see `Endpoint::opaque`), so the
//! index marks such endpoints opaque too, as Linkerd's destination controller does.

use kube::{core::DeserializeGuard, ResourceExt};
use std::collections::BTreeMap;
use weft_policy_k8s_api::{LabelSelector, Port, ProxyProtocol, Server};

/// What the index keeps of a valid Server with `proxyProtocol: opaque`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpaqueServer {
    pub(crate) pod_selector: LabelSelector,
    pub(crate) port: Port,
}

impl OpaqueServer {
    /// The opaque Server `guard` describes, or `None` when it is not opaque or not valid (the
    /// policy index, which serves the Server itself, logs and counts an invalid one).
    pub(crate) fn from_guard(guard: DeserializeGuard<Server>) -> Option<Self> {
        let server = guard.0.ok()?;
        Self::from_server(server)
    }

    pub(crate) fn from_server(server: Server) -> Option<Self> {
        if server.spec.proxy_protocol != ProxyProtocol::Opaque || server.spec.validate().is_err() {
            return None;
        }
        Some(Self {
            pod_selector: server.spec.pod_selector,
            port: server.spec.port,
        })
    }

    /// The ports of a pod (by its labels and named container ports) this Server makes opaque.
    pub(crate) fn opaque_ports_on<'p>(
        &'p self,
        labels: &BTreeMap<String, String>,
        named_ports: &'p [(String, u16)],
    ) -> impl Iterator<Item = u16> + 'p {
        let selected = self.pod_selector.matches(labels);
        let (number, name) = match &self.port {
            Port::Number(n) => (Some(n.get()), None),
            Port::Name(name) => (None, Some(name.as_str())),
        };
        let named = named_ports
            .iter()
            .filter(move |(n, _)| Some(n.as_str()) == name)
            .map(|(_, port)| *port);
        number.into_iter().chain(named).filter(move |_| selected)
    }
}

/// The key under which a Server event names its object.
pub(crate) fn server_name(guard: &DeserializeGuard<Server>) -> (String, String) {
    (guard.namespace().unwrap_or_default(), guard.name_any())
}
