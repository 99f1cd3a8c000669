//! Services in the index: cluster IPs, TCP ports and opaque ports.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use std::{collections::BTreeMap, net::IpAddr};

use crate::{key::ObjKey, opaque::OpaquePorts, OPAQUE_PORTS_ANNOTATION};

/// What the index keeps of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceInfo {
    /// Cluster IPs; empty for headless and ExternalName Services.
    pub(crate) cluster_ips: Vec<IpAddr>,
    /// TCP ports by number, with their name (`None` when unnamed or empty). Empty for
    /// ExternalName Services, which therefore have no endpoints and no `service_exists`.
    pub(crate) ports: BTreeMap<u16, Option<String>>,
    /// `None` without an annotation: the default opaque ports apply.
    pub(crate) opaque: Option<OpaquePorts>,
    pub(crate) opaque_annotation: Option<String>,
}

impl ServiceInfo {
    /// Extracts what matters of `service`. `previous` avoids re-parsing (and re-logging and
    /// re-counting) an unchanged malformed annotation; the flag tells whether the annotation was
    /// newly found malformed.
    pub(crate) fn from_service(
        key: &ObjKey,
        service: &Service,
        previous: Option<&ServiceInfo>,
    ) -> (Self, bool) {
        let opaque_annotation =
            weft_core::linkerd::value(service.annotations(), OPAQUE_PORTS_ANNOTATION)
                .map(str::to_string);
        let (opaque, invalid) = match previous {
            Some(prev) if prev.opaque_annotation == opaque_annotation => {
                (prev.opaque.clone(), false)
            }
            _ => OpaquePorts::from_optional_annotation(
                opaque_annotation.as_deref(),
                &format_args!("Service {key}"),
            ),
        };
        let mut info = ServiceInfo {
            cluster_ips: Vec::new(),
            ports: BTreeMap::new(),
            opaque,
            opaque_annotation,
        };
        let Some(spec) = &service.spec else {
            return (info, invalid);
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return (info, invalid);
        }
        let ips = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.iter().collect::<Vec<_>>(),
            _ => spec.cluster_ip.iter().collect(),
        };
        for ip in ips {
            // "None" (headless), "" and anything unparsable are not addresses.
            if let Ok(ip) = ip.parse::<IpAddr>() {
                if !info.cluster_ips.contains(&ip) {
                    info.cluster_ips.push(ip);
                }
            }
        }
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let Some(number) = u16::try_from(port.port).ok().filter(|n| *n != 0) else {
                continue;
            };
            let name = port.name.clone().filter(|n| !n.is_empty());
            info.ports.insert(number, name);
        }
        (info, invalid)
    }
}
