//! EndpointSlices in the index: the ready addresses of a Service, by target port.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use std::net::IpAddr;

use crate::key::ObjKey;

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What the index keeps of an EndpointSlice of IPv4 or IPv6 addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SliceInfo {
    /// The Service (in the slice's namespace) the slice belongs to.
    pub(crate) service: String,
    pub(crate) ports: Vec<SlicePort>,
    /// Ready endpoints only.
    pub(crate) endpoints: Vec<SliceEndpoint>,
}

/// A TCP port of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlicePort {
    /// `None` when unnamed or empty, as for Service ports.
    pub(crate) name: Option<String>,
    pub(crate) port: u16,
}

/// A ready endpoint of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SliceEndpoint {
    pub(crate) addresses: Vec<IpAddr>,
    /// The pod the endpoint names (`targetRef` of kind Pod).
    pub(crate) pod: Option<ObjKey>,
    pub(crate) zone: Option<String>,
}

impl SliceInfo {
    /// Extracts what matters of `slice`; `None` when the index ignores it: no
    /// `kubernetes.io/service-name` label, or addresses that are not IPs (`FQDN`).
    pub(crate) fn from_slice(namespace: &str, slice: &EndpointSlice) -> Option<Self> {
        let service = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            return None;
        }
        let ports = slice
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
            .filter_map(|p| {
                // A slice port without a number stands for "all ports": nothing to connect to.
                let port = p
                    .port
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0)?;
                Some(SlicePort {
                    name: p.name.clone().filter(|n| !n.is_empty()),
                    port,
                })
            })
            .collect();
        let endpoints = slice
            .endpoints
            .iter()
            .filter(|ep| ep.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .map(|ep| SliceEndpoint {
                addresses: ep.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                pod: ep
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| {
                        let name = r.name.clone()?;
                        let ns = r.namespace.clone().unwrap_or_else(|| namespace.to_string());
                        Some(ObjKey::new(ns, name))
                    }),
                zone: ep.zone.clone(),
            })
            .filter(|ep| !ep.addresses.is_empty())
            .collect();
        Some(Self {
            service,
            ports,
            endpoints,
        })
    }

    pub(crate) fn pods(&self) -> impl Iterator<Item = &ObjKey> {
        self.endpoints.iter().filter_map(|ep| ep.pod.as_ref())
    }
}
