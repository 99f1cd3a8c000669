//! Registers Weft's webhooks with the API server, pointing at a controller on 127.0.0.1 — the
//! same configuration the Helm chart installs, with `clientConfig.url` instead of a Service.

use anyhow::Result;
use k8s_openapi::{
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
        ValidatingWebhookConfiguration, WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
    ByteString,
};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};

pub const FIELD_MANAGER: &str = "weft-e2e";

/// The label that opts a namespace out of Weft's webhooks, as in the chart.
pub fn not_opted_out() -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "weft.dev/admission-webhooks".to_string(),
            operator: "NotIn".to_string(),
            values: Some(vec!["disabled".to_string()]),
        }]),
        ..Default::default()
    }
}

pub fn client_config(url: String, ca_bundle: ByteString) -> WebhookClientConfig {
    WebhookClientConfig {
        url: Some(url),
        ca_bundle: Some(ca_bundle),
        service: None,
    }
}

pub fn pods_create() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![String::new()]),
        api_versions: Some(vec!["v1".to_string()]),
        operations: Some(vec!["CREATE".to_string()]),
        resources: Some(vec!["pods".to_string()]),
        scope: Some("Namespaced".to_string()),
    }]
}

/// A mutating webhook for pod creation, configured as the chart configures Weft's: `Fail`,
/// `reinvocationPolicy: IfNeeded`, 10 s timeout.
pub fn pod_webhook(
    name: &str,
    client_config: WebhookClientConfig,
    namespace_selector: LabelSelector,
) -> MutatingWebhook {
    MutatingWebhook {
        name: name.to_string(),
        client_config,
        rules: Some(pods_create()),
        namespace_selector: Some(namespace_selector),
        side_effects: "None".to_string(),
        admission_review_versions: vec!["v1".to_string()],
        failure_policy: Some("Fail".to_string()),
        reinvocation_policy: Some("IfNeeded".to_string()),
        timeout_seconds: Some(10),
        ..Default::default()
    }
}

/// Weft's mutating webhook for pods at `https://{addr}/inject`.
pub fn inject_configuration(
    name: &str,
    addr: std::net::SocketAddr,
    ca_bundle: ByteString,
) -> MutatingWebhookConfiguration {
    inject_configuration_for(name, addr, ca_bundle, not_opted_out())
}

/// Weft's mutating webhook for pods at `https://{addr}/inject`, for the namespaces
/// `namespace_selector` selects.
pub fn inject_configuration_for(
    name: &str,
    addr: std::net::SocketAddr,
    ca_bundle: ByteString,
    namespace_selector: LabelSelector,
) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        webhooks: Some(vec![pod_webhook(
            "inject.weft.dev",
            client_config(format!("https://{addr}/inject"), ca_bundle),
            namespace_selector,
        )]),
    }
}

/// Weft's validating webhooks at `https://{addr}/validate`, as the chart registers them: policy
/// resources failing closed, Gateway API HTTPRoutes failing open.
pub fn validate_configuration(
    name: &str,
    addr: std::net::SocketAddr,
    ca_bundle: ByteString,
) -> ValidatingWebhookConfiguration {
    let webhook =
        |name: &str, group: &str, resources: &[&str], failure_policy: &str| ValidatingWebhook {
            name: name.to_string(),
            client_config: client_config(format!("https://{addr}/validate"), ca_bundle.clone()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![group.to_string()]),
                api_versions: Some(vec!["*".to_string()]),
                operations: Some(vec!["CREATE".to_string(), "UPDATE".to_string()]),
                resources: Some(resources.iter().map(|r| r.to_string()).collect()),
                scope: Some("Namespaced".to_string()),
            }]),
            namespace_selector: Some(not_opted_out()),
            side_effects: "None".to_string(),
            admission_review_versions: vec!["v1".to_string()],
            failure_policy: Some(failure_policy.to_string()),
            timeout_seconds: Some(10),
            ..Default::default()
        };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        webhooks: Some(vec![
            webhook(
                "validate.policy.weft.dev",
                "policy.weft.dev",
                &[
                    "servers",
                    "serverauthorizations",
                    "authorizationpolicies",
                    "meshtlsauthentications",
                    "networkauthentications",
                ],
                "Fail",
            ),
            webhook(
                "httproute-validator.weft.dev",
                "gateway.networking.k8s.io",
                &["httproutes"],
                "Ignore",
            ),
        ]),
    }
}

pub async fn apply<K>(client: &kube::Client, object: &K) -> Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
    K::DynamicType: Default,
{
    let api = Api::<K>::all(client.clone());
    let name = object.meta().name.clone().unwrap_or_default();
    Ok(api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?)
}

pub async fn delete<K>(client: &kube::Client, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api = Api::<K>::all(client.clone());
    if let Err(error) = api.delete(name, &DeleteParams::default()).await {
        eprintln!("e2e: could not delete {name}: {error}");
    }
}
