//! What the admin server exports beyond kubert's own metrics: the admission webhooks' metrics.
//! (`/live`, `/ready` and `/metrics` themselves are served by kubert's admin server.)

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use std::time::Duration;

/// Counts and times every admission request the webhooks answer.
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<WebhookLabels, Histogram>,
    warnings: Family<WebhookLabels, Counter>,
    namespace_lookups: Family<LookupLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    webhook: &'static str,
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    result: &'static str,
}

/// Which webhook answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Inject,
    Validate,
}

// === impl AdmissionMetrics ===

impl AdmissionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::default();
        registry.register(
            "admission_requests",
            "Admission requests answered, by webhook, result (injected, skipped, allowed, rejected, denied, error) and reason",
            requests.clone(),
        );
        let duration = Family::<WebhookLabels, Histogram>::new_with_constructor(|| {
            // 10µs .. ~5s
            Histogram::new(exponential_buckets(0.00001, 3.0, 13))
        });
        registry.register_with_unit(
            "admission_duration",
            "Time to answer an admission request, from the request head to the response",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let warnings = Family::default();
        registry.register(
            "admission_warnings",
            "Admission responses that carried warnings for the user (e.g. an invalid namespace annotation that was ignored)",
            warnings.clone(),
        );
        let namespace_lookups = Family::default();
        registry.register(
            "inject_namespace_api_lookups",
            "Namespaces the injection webhook had to fetch from the API because the index did not know them yet",
            namespace_lookups.clone(),
        );
        Self {
            requests,
            duration,
            warnings,
            namespace_lookups,
        }
    }

    pub fn record(
        &self,
        webhook: Webhook,
        result: &'static str,
        reason: &'static str,
        elapsed: Duration,
    ) {
        let webhook = webhook.as_str();
        self.requests
            .get_or_create(&RequestLabels {
                webhook,
                result,
                reason,
            })
            .inc();
        self.duration
            .get_or_create(&WebhookLabels { webhook })
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_warnings(&self, webhook: Webhook) {
        self.warnings
            .get_or_create(&WebhookLabels {
                webhook: webhook.as_str(),
            })
            .inc();
    }

    pub fn record_namespace_lookup(&self, result: &'static str) {
        self.namespace_lookups
            .get_or_create(&LookupLabels { result })
            .inc();
    }
}

impl Default for AdmissionMetrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inject => "inject",
            Self::Validate => "validate",
        }
    }
}
