//! The identity service's metrics, registered under the controller's `weft` prefix:
//! `weft_identity_certificates_issued_total`, `weft_identity_certify_refusals_total{reason}`,
//! `weft_identity_issuer_expiry_timestamp_seconds` and `weft_identity_issuer_reload_errors_total`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct IdentityMetrics {
    issued: Counter,
    refusals: Family<RefusalLabels, Counter>,
    issuer_expiry: Gauge,
    issuer_reload_errors: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

impl IdentityMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let issued = Counter::default();
        registry.register(
            "identity_certificates_issued",
            "Certificates the identity service issued to proxies",
            issued.clone(),
        );
        let refusals = Family::default();
        registry.register(
            "identity_certify_refusals",
            "Certify requests refused, by reason (e.g. token_unauthenticated, csr_name_mismatch)",
            refusals.clone(),
        );
        let issuer_expiry = Gauge::default();
        registry.register_with_unit(
            "identity_issuer_expiry_timestamp",
            "When the issuer certificate in use expires (Unix time); no certificate outlives it",
            Unit::Seconds,
            issuer_expiry.clone(),
        );
        let issuer_reload_errors = Counter::default();
        registry.register(
            "identity_issuer_reload_errors",
            "Times changed issuer or trust-anchor files could not be used (the previous issuer stays in use)",
            issuer_reload_errors.clone(),
        );
        Self {
            issued,
            refusals,
            issuer_expiry,
            issuer_reload_errors,
        }
    }

    pub(crate) fn issued(&self) {
        self.issued.inc();
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { reason }).inc();
    }

    pub(crate) fn issuer_loaded(&self, not_after: SystemTime) {
        let secs = not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.issuer_expiry.set(secs);
    }

    pub(crate) fn issuer_reload_failed(&self) {
        self.issuer_reload_errors.inc();
    }
}

#[cfg(test)]
impl IdentityMetrics {
    pub(crate) fn issued_count(&self) -> u64 {
        self.issued.get()
    }

    pub(crate) fn refusals_for(&self, reason: &'static str) -> u64 {
        self.refusals.get_or_create(&RefusalLabels { reason }).get()
    }
}

impl Default for IdentityMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_as_exported() {
        let mut registry = Registry::default();
        let metrics = IdentityMetrics::register(registry.sub_registry_with_prefix("weft"));
        metrics.issued();
        metrics.refused("csr_name_mismatch");
        metrics.issuer_loaded(UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000));
        metrics.issuer_reload_failed();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "weft_identity_certificates_issued_total 1",
            "weft_identity_certify_refusals_total{reason=\"csr_name_mismatch\"} 1",
            "weft_identity_issuer_expiry_timestamp_seconds 1900000000",
            "weft_identity_issuer_reload_errors_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
