//! The webhook registrations and their serving certificate: both configurations exist, and every
//! webhook's caBundle verifies the serving certificate (from the chart's Secret) for the name the
//! API server dials; the certificate's expiry.

use super::{certs, Check, Fetched, Installation};
use k8s_openapi::{
    api::{
        admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
        },
        core::v1::Secret,
    },
    ByteString,
};
use rustls_pki_types::CertificateDer;

/// The serving certificate the controller is given, from the chart's Secret.
#[derive(Clone, Debug)]
pub struct ServingCert {
    /// `tls.crt`: the leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// `ca.crt`, when the Secret has one.
    pub ca: Option<Vec<CertificateDer<'static>>>,
}

/// Reads the serving certificate from the Secret, or says why it cannot.
pub fn serving_cert(inst: &Installation, secret: &Fetched<Secret>) -> Result<ServingCert, Check> {
    let name = format!("Secret {}/{}", inst.namespace, inst.tls_secret());
    let secret = match secret {
        Fetched::Found(secret) => secret,
        Fetched::NotFound => {
            return Err(Check::fail(
                format!("{name} (the webhook's serving certificate) does not exist"),
                format!(
                    "{} creates it (with tls.mode=certManager, cert-manager does: check the \
                     Certificate {}-webhook)",
                    inst.helm_upgrade(),
                    inst.fullname
                ),
            ))
        }
        Fetched::Failed(error) => {
            return Err(Check::fail(
                format!("cannot read {name}: {error}"),
                format!(
                    "run weft check as a user that may get secrets in namespace {}",
                    inst.namespace
                ),
            ))
        }
    };
    let key =
        |key: &str| -> Option<&ByteString> { secret.data.as_ref().and_then(|data| data.get(key)) };
    let fix = || {
        format!(
            "delete the Secret (kubectl -n {} delete secret {}) and run `{}`: the chart \
             generates a new certificate",
            inst.namespace,
            inst.tls_secret(),
            inst.helm_upgrade()
        )
    };
    let Some(tls_crt) = key("tls.crt") else {
        return Err(Check::fail(format!("{name} has no tls.crt"), fix()));
    };
    let chain = certs::parse_pem(&tls_crt.0, &format!("tls.crt of {name}"))
        .map_err(|error| Check::fail(error, fix()))?;
    let ca = match key("ca.crt") {
        Some(ca) => Some(
            certs::parse_pem(&ca.0, &format!("ca.crt of {name}"))
                .map_err(|error| Check::fail(error, fix()))?,
        ),
        None => None,
    };
    Ok(ServingCert { chain, ca })
}

/// The webhooks of a configuration, by name and client config (mutating and validating webhooks
/// are different types with the same two fields).
fn targets<'a>(
    webhooks: impl Iterator<Item = (&'a String, &'a WebhookClientConfig)>,
) -> Vec<Target<'a>> {
    webhooks
        .map(|(name, client)| Target { name, client })
        .collect()
}

/// One webhook of a configuration, as the checks see it.
#[derive(Clone, Debug, PartialEq)]
struct Target<'a> {
    name: &'a str,
    client: &'a WebhookClientConfig,
}

/// Checks both configurations and, when the serving certificate could be read, every webhook's
/// caBundle against it. `now` is in Unix seconds.
pub fn check(
    inst: &Installation,
    mutating: &Fetched<MutatingWebhookConfiguration>,
    validating: &Fetched<ValidatingWebhookConfiguration>,
    serving: &Result<ServingCert, Check>,
    now: i64,
) -> Vec<Check> {
    let mut checks = vec![match serving {
        Ok(cert) => Check::ok(format!(
            "Secret {}/{} holds the webhook's serving certificate ({})",
            inst.namespace,
            inst.tls_secret(),
            describe(&cert.chain)
        )),
        Err(check) => check.clone(),
    }];
    let mutating_targets = mutating.map(|config| {
        targets(
            config
                .webhooks
                .iter()
                .flatten()
                .map(|w| (&w.name, &w.client_config)),
        )
    });
    let validating_targets = validating.map(|config| {
        targets(
            config
                .webhooks
                .iter()
                .flatten()
                .map(|w| (&w.name, &w.client_config)),
        )
    });
    for (kind, name, targets) in [
        (
            "MutatingWebhookConfiguration",
            inst.mutating_webhook(),
            mutating_targets,
        ),
        (
            "ValidatingWebhookConfiguration",
            inst.validating_webhook(),
            validating_targets,
        ),
    ] {
        let targets = match targets {
            Fetched::Found(targets) => targets,
            Fetched::NotFound => {
                checks.push(Check::fail(
                    format!("{kind} {name} does not exist"),
                    format!("{} installs it", inst.helm_upgrade()),
                ));
                continue;
            }
            Fetched::Failed(error) => {
                checks.push(Check::fail(
                    format!("cannot read {kind} {name}: {error}"),
                    format!("run weft check as a user that may get {kind}s"),
                ));
                continue;
            }
        };
        if targets.is_empty() {
            checks.push(Check::fail(
                format!("{kind} {name} has no webhooks"),
                format!("{} restores it", inst.helm_upgrade()),
            ));
            continue;
        }
        checks.push(Check::ok(format!("{kind} {name} exists")));
        if let Ok(serving) = serving {
            checks.extend(targets.iter().map(|t| ca_bundle(inst, t, serving, now)));
        }
    }
    checks
}

/// Whether one webhook's caBundle verifies the serving certificate for the name it is dialed at.
fn ca_bundle(inst: &Installation, target: &Target<'_>, serving: &ServingCert, now: i64) -> Check {
    let what = format!("webhook {}", target.name);
    let fix = format!(
        "`{}` writes the caBundle from the Secret {}/{} (with tls.mode=certManager, cert-manager's \
         cainjector does: is it running?)",
        inst.helm_upgrade(),
        inst.namespace,
        inst.tls_secret()
    );
    let server_name = match dialed_name(target.client) {
        Ok(name) => name,
        Err(error) => return Check::fail(format!("{what}: {error}"), fix),
    };
    let bundle = match &target.client.ca_bundle {
        Some(bundle) if !bundle.0.is_empty() => bundle,
        _ => {
            return Check::fail(
                format!("{what} has no caBundle: the API server cannot verify the webhook"),
                fix,
            )
        }
    };
    let bundle = match certs::parse_pem(&bundle.0, "the caBundle") {
        Ok(bundle) => bundle,
        Err(error) => return Check::fail(format!("{what}: {error}"), fix),
    };
    match certs::verify_serving(&serving.chain, &bundle, &server_name, now) {
        Ok(()) => Check::ok(format!(
            "{what}: the caBundle verifies the serving certificate for {server_name}"
        )),
        Err(error) => Check::fail(format!("{what}: {error}"), fix),
    }
}

/// The name the API server verifies the webhook's certificate against: `<service>.<namespace>.svc`
/// for a Service reference, else the URL's host.
fn dialed_name(client: &WebhookClientConfig) -> Result<String, String> {
    if let Some(service) = &client.service {
        return Ok(format!("{}.{}.svc", service.name, service.namespace));
    }
    let Some(url) = &client.url else {
        return Err("clientConfig has neither a service nor a url".to_string());
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("clientConfig.url {url:?} is not https"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(format!("clientConfig.url {url:?} has no host"));
    }
    Ok(host.to_string())
}

/// The expiry of the serving certificate and of its CA.
pub fn expiry(inst: &Installation, serving: &Result<ServingCert, Check>, now: i64) -> Vec<Check> {
    let Ok(serving) = serving else {
        return vec![Check::fail(
            "the serving certificate's expiry is unknown: it cannot be read (see Webhooks)",
            "fix the Secret first",
        )];
    };
    let fix = format!(
        "renew it: delete the Secret (kubectl -n {} delete secret {}) and run `{}`; the chart \
         then generates a new certificate and caBundle, and the controller loads it without a \
         restart (with tls.mode=certManager, check the Certificate {}-webhook)",
        inst.namespace,
        inst.tls_secret(),
        inst.helm_upgrade(),
        inst.fullname
    );
    let mut certs = vec![("the webhook serving certificate", serving.chain.first())];
    if let Some(ca) = &serving.ca {
        certs.push(("the webhook CA certificate (ca.crt)", ca.first()));
    }
    certs
        .into_iter()
        .filter_map(|(what, der)| Some((what, der?)))
        .map(|(what, der)| match certs::info(der) {
            Ok(info) => certs::expiry(what, &info, now, &fix),
            Err(error) => Check::fail(format!("{what} is {error}"), fix.clone()),
        })
        .collect()
}

fn describe(chain: &[CertificateDer<'_>]) -> String {
    match chain.first().map(certs::info) {
        Some(Ok(info)) if !info.names.is_empty() => {
            format!("{}, for {}", info.subject, info.names.join(", "))
        }
        Some(Ok(info)) => info.subject,
        Some(Err(error)) => error,
        None => "empty".to_string(),
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::check::{
        certs::tests::{pki, JUNE_2026 as JUNE},
        Status,
    };

    const LONG: ((i32, u8, u8), (i32, u8, u8)) = ((2026, 1, 1), (2036, 1, 1));

    fn inst() -> Installation {
        Installation::new("weft", "weft", None)
    }

    fn secret(tls_crt: &str, ca_crt: &str) -> Fetched<Secret> {
        let data = [
            (
                "tls.crt".to_string(),
                ByteString(tls_crt.as_bytes().to_vec()),
            ),
            ("ca.crt".to_string(), ByteString(ca_crt.as_bytes().to_vec())),
        ];
        Fetched::Found(Secret {
            data: Some(data.into_iter().collect()),
            ..Default::default()
        })
    }

    fn mutating(ca_bundle: &str) -> Fetched<MutatingWebhookConfiguration> {
        Fetched::Found(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "weft-proxy-injector"},
                "webhooks": [{
                    "name": "proxy-injector.weft.dev",
                    "clientConfig": {
                        "service": {"name": "weft", "namespace": "weft", "path": "/inject"},
                        "caBundle": base64(ca_bundle),
                    },
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                }],
            }))
            .unwrap(),
        )
    }

    fn validating(client_config: serde_json::Value) -> Fetched<ValidatingWebhookConfiguration> {
        Fetched::Found(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "weft-policy-validator"},
                "webhooks": [{
                    "name": "policy-validator.weft.dev",
                    "clientConfig": client_config,
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                }],
            }))
            .unwrap(),
        )
    }

    fn base64(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn statuses(checks: &[Check]) -> Vec<Status> {
        checks.iter().map(|c| c.status).collect()
    }

    #[test]
    fn a_correct_installation_passes() {
        let pki = pki(
            "weft-webhook-ca",
            &["weft", "weft.weft", "weft.weft.svc"],
            LONG,
        );
        let serving = serving_cert(&inst(), &secret(&pki.leaf_pem, &pki.ca_pem));
        let service = serde_json::json!({
            "service": {"name": "weft", "namespace": "weft"}, "caBundle": base64(&pki.ca_pem),
        });
        let checks = check(
            &inst(),
            &mutating(&pki.ca_pem),
            &validating(service),
            &serving,
            JUNE,
        );
        assert_eq!(statuses(&checks), [Status::Ok; 5], "{checks:#?}");
        assert!(
            checks[2].message.contains("for weft.weft.svc"),
            "{checks:#?}"
        );
    }

    #[test]
    fn a_wrong_ca_bundle_fails_with_a_fix() {
        let other = pki("someone-else", &["weft.weft.svc"], LONG);
        let pki = pki("weft-webhook-ca", &["weft.weft.svc"], LONG);
        let serving = serving_cert(&inst(), &secret(&pki.leaf_pem, &pki.ca_pem));
        let service = serde_json::json!({
            "service": {"name": "weft", "namespace": "weft"}, "caBundle": base64(&pki.ca_pem),
        });
        let checks = check(
            &inst(),
            &mutating(&other.ca_pem),
            &validating(service),
            &serving,
            JUNE,
        );
        assert_eq!(
            statuses(&checks),
            [Status::Ok, Status::Ok, Status::Fail, Status::Ok, Status::Ok]
        );
        let failed = &checks[2];
        assert!(failed
            .message
            .starts_with("webhook proxy-injector.weft.dev: "));
        assert!(
            failed.message.contains("CN=someone-else"),
            "{}",
            failed.message
        );
        assert!(failed
            .fix
            .as_deref()
            .unwrap()
            .contains("helm upgrade --install weft charts/weft --namespace weft"));
    }

    #[test]
    fn missing_objects_and_bundles_fail() {
        let pki = pki("ca", &["weft.weft.svc"], LONG);
        let serving = serving_cert(&inst(), &secret(&pki.leaf_pem, &pki.ca_pem));
        let no_bundle = serde_json::json!({"url": "https://weft.example:8443/validate"});
        let checks = check(
            &inst(),
            &Fetched::NotFound,
            &validating(no_bundle),
            &serving,
            JUNE,
        );
        assert_eq!(
            statuses(&checks),
            [Status::Ok, Status::Fail, Status::Ok, Status::Fail]
        );
        assert_eq!(
            checks[1].message,
            "MutatingWebhookConfiguration weft-proxy-injector does not exist"
        );
        assert!(checks[3].message.contains("has no caBundle"), "{checks:#?}");

        let checks = check(
            &inst(),
            &Fetched::Failed("forbidden".into()),
            &Fetched::NotFound,
            &serving_cert(&inst(), &Fetched::NotFound),
            JUNE,
        );
        assert_eq!(statuses(&checks), [Status::Fail; 3]);
        assert!(checks[0].message.contains("weft/weft-webhook-tls"));
    }

    #[test]
    fn a_secret_with_garbage_fails_without_panicking() {
        let checks = check(
            &inst(),
            &Fetched::NotFound,
            &Fetched::NotFound,
            &serving_cert(&inst(), &secret("garbage", "")),
            JUNE,
        );
        assert!(checks[0]
            .message
            .contains("tls.crt of Secret weft/weft-webhook-tls"));
        assert_eq!(checks[0].status, Status::Fail);
    }

    #[test]
    fn the_dialed_name_comes_from_the_service_or_the_url() {
        let config = |json| serde_json::from_value::<WebhookClientConfig>(json).unwrap();
        let name = |json| dialed_name(&config(json));
        assert_eq!(
            name(serde_json::json!({"service": {"name": "s", "namespace": "n"}})),
            Ok("s.n.svc".to_string())
        );
        assert_eq!(
            name(serde_json::json!({"url": "https://127.0.0.1:9443/inject"})),
            Ok("127.0.0.1".to_string())
        );
        assert_eq!(
            name(serde_json::json!({"url": "https://[::1]:9443/inject"})),
            Ok("::1".to_string())
        );
        assert!(name(serde_json::json!({"url": "http://x/inject"})).is_err());
        assert!(name(serde_json::json!({})).is_err());
    }

    #[test]
    fn expiry_covers_the_serving_and_the_ca_certificate() {
        let pki = pki("ca", &["weft.weft.svc"], ((2026, 1, 1), (2026, 6, 11)));
        let serving = serving_cert(&inst(), &secret(&pki.leaf_pem, &pki.ca_pem));
        let checks = expiry(&inst(), &serving, JUNE);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].status, Status::Warn);
        assert!(checks[0]
            .message
            .starts_with("the webhook serving certificate is valid for another 10 days"));
        assert!(checks[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("kubectl -n weft delete secret weft-webhook-tls"));
        assert_eq!(checks[1].status, Status::Ok, "{:?}", checks[1]);
    }
}
