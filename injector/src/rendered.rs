//! The objects injection adds, rendered to JSON once per [`Injector`](crate::decision::Injector) for its flag
//! configuration. Most pods use that configuration unchanged, so the webhook copies these bytes into the patch
//! instead of building the containers as JSON values and serializing them for every request.
//!
//! The proxy container differs per pod only in the value of `LINKERD2_PROXY_INBOUND_PORTS`; it is rendered with a
//! marker in that place and kept as the bytes before and after it.

use crate::{
    config::ProxyConfig,
    sidecar::{self, inbound_list},
};
use std::fmt;

/// Stands for the inbound ports while rendering; it cannot come out of a validated configuration.
const MARKER: &str = "\u{0}weft-inbound-ports\u{0}";

/// The sidecar objects rendered for one configuration.
#[derive(Clone)]
pub(crate) struct RenderedSidecars {
    config: ProxyConfig,
    init_container: Vec<u8>,
    volumes: Vec<Vec<u8>>,
    /// The proxy container up to the inbound ports' JSON string, and after it.
    proxy_before: Vec<u8>,
    proxy_after: Vec<u8>,
}

impl fmt::Debug for RenderedSidecars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedSidecars")
            .field("init_container_bytes", &self.init_container.len())
            .field(
                "volume_bytes",
                &self.volumes.iter().map(Vec::len).sum::<usize>(),
            )
            .field(
                "proxy_bytes",
                &(self.proxy_before.len() + self.proxy_after.len()),
            )
            .finish()
    }
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value always serializes")
}

impl RenderedSidecars {
    /// `None` when the marker does not appear exactly once in the rendered proxy container (then every
    /// request renders the objects itself).
    pub(crate) fn new(config: &ProxyConfig) -> Option<Self> {
        let proxy = to_json(&sidecar::proxy_container_with(
            config,
            MARKER.to_string(),
            config.native_sidecar,
        ));
        let marker = to_json(&MARKER.into());
        let mut found = proxy
            .windows(marker.len())
            .enumerate()
            .filter(|(_, w)| *w == marker.as_slice())
            .map(|(at, _)| at);
        let at = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some(Self {
            config: config.clone(),
            init_container: to_json(&sidecar::init_container(config)),
            volumes: sidecar::volumes().iter().map(to_json).collect(),
            proxy_before: proxy[..at].to_vec(),
            proxy_after: proxy[at + marker.len()..].to_vec(),
        })
    }

    /// These renderings, if they were made for `config`.
    pub(crate) fn for_config(&self, config: &ProxyConfig) -> Option<&Self> {
        (self.config == *config).then_some(self)
    }

    pub(crate) fn write_init_container(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.init_container);
    }

    /// The volume at `index` of [`sidecar::volumes`].
    pub(crate) fn write_volume(&self, out: &mut Vec<u8>, index: usize) {
        out.extend_from_slice(&self.volumes[index]);
    }

    pub(crate) fn write_proxy_container(&self, out: &mut Vec<u8>, inbound_ports: &[u16]) {
        out.extend_from_slice(&self.proxy_before);
        // A list of digits and commas needs no escaping.
        out.push(b'"');
        out.extend_from_slice(inbound_list(inbound_ports).as_bytes());
        out.push(b'"');
        out.extend_from_slice(&self.proxy_after);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Value;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn renderings_equal_the_objects_they_stand_for() {
        for native in [false, true] {
            let config = ProxyConfig {
                native_sidecar: native,
                ..ProxyConfig::default()
            };
            let rendered = RenderedSidecars::new(&config).unwrap();
            for ports in [&[][..], &[80], &[80, 443, 8080]] {
                let mut out = Vec::new();
                rendered.write_proxy_container(&mut out, ports);
                assert_eq!(
                    parse(&out),
                    sidecar::proxy_container(&config, ports, native),
                    "native {native}, ports {ports:?}"
                );
            }
            let mut out = Vec::new();
            rendered.write_init_container(&mut out);
            assert_eq!(parse(&out), sidecar::init_container(&config));
            for (i, volume) in sidecar::volumes().iter().enumerate() {
                let mut out = Vec::new();
                rendered.write_volume(&mut out, i);
                assert_eq!(&parse(&out), volume);
            }
        }
    }

    #[test]
    fn renderings_apply_only_to_their_configuration() {
        let config = ProxyConfig::default();
        let rendered = RenderedSidecars::new(&config).unwrap();
        assert!(rendered.for_config(&config).is_some());
        let other = ProxyConfig {
            log_level: "debug".into(),
            ..ProxyConfig::default()
        };
        assert!(rendered.for_config(&other).is_none());
    }

    #[test]
    fn a_configuration_containing_the_marker_is_not_rendered() {
        // The whole log filter is the marker (no header-logging directives after it).
        let mut config = ProxyConfig {
            log_level: MARKER.to_string(),
            ..ProxyConfig::default()
        };
        config.tuning.log_http_headers = true;
        assert!(RenderedSidecars::new(&config).is_none());
    }
}
