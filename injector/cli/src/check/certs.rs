//! Certificates: PEM parsing, verification of a serving certificate against a caBundle (as the API
//! server does when it calls a webhook: the chain and the Service's DNS name), and expiry.
//!
//! Verification is rustls-webpki's; x509-parser reads the fields webpki does not expose (validity,
//! names) for the messages.

use super::Check;
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::time::Duration;

/// A certificate that expires within this many days gets a warning.
pub const WARN_DAYS: i64 = 30;

const DAY: i64 = 24 * 60 * 60;

/// The fields of a certificate the checks report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `not_after` as a readable date.
    pub not_after_text: String,
    /// The subjectAltName DNS names and IP addresses.
    pub names: Vec<String>,
}

/// Parses every `CERTIFICATE` block of `pem`; `what` names its source in errors. Fails when there
/// is none.
pub fn parse_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{what} is not valid PEM: {error}"))?;
    if certs.is_empty() {
        return Err(format!("{what} holds no PEM CERTIFICATE"));
    }
    Ok(certs)
}

/// Reads the fields of a DER certificate.
pub fn info(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|error| format!("not a valid X.509 certificate: {error}"))?;
    let validity = cert.validity();
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip)
                        .ok()
                        .map(|ip| std::net::IpAddr::from(ip).to_string()),
                    16 => <[u8; 16]>::try_from(*ip)
                        .ok()
                        .map(|ip| std::net::IpAddr::from(ip).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        Ok(None) => vec![],
        Err(error) => return Err(format!("its subjectAltName cannot be read: {error}")),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        not_after_text: validity.not_after.to_string(),
        names,
    })
}

/// Verifies that `chain` (leaf first, then intermediates) chains to a certificate of `ca_bundle`
/// for TLS server use, and is valid for `server_name` (a DNS name or an IP address), as a TLS
/// client would. `now` is clamped into the leaf's validity: expiry is [`expiry`]'s business, so an
/// expired but otherwise correct certificate still verifies here.
pub fn verify_serving(
    chain: &[CertificateDer<'_>],
    ca_bundle: &[CertificateDer<'_>],
    server_name: &str,
    now: i64,
) -> Result<(), String> {
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or("there is no serving certificate")?;
    let leaf_info = info(leaf).map_err(|e| format!("the serving certificate is {e}"))?;
    let anchors = ca_bundle
        .iter()
        .map(|ca| webpki::anchor_from_trusted_cert(ca).map(|a| a.to_owned()))
        .collect::<Result<Vec<TrustAnchor<'_>>, _>>()
        .map_err(|error| format!("the caBundle holds an unusable certificate: {error}"))?;
    let end_entity = webpki::EndEntityCert::try_from(leaf)
        .map_err(|error| format!("the serving certificate cannot be used: {error}"))?;
    let at = now.clamp(leaf_info.not_before, leaf_info.not_after).max(0);
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.unsigned_abs()));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|error| match error {
            webpki::Error::UnknownIssuer => format!(
                "the serving certificate ({}) is not signed by the caBundle's CA ({})",
                leaf_info.subject,
                ca_subjects(ca_bundle)
            ),
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                "a CA certificate of the chain is expired or not yet valid".to_string()
            }
            other => format!("the serving certificate does not verify: {other}"),
        })?;
    let name = ServerName::try_from(server_name)
        .map_err(|_| format!("{server_name:?} is neither a DNS name nor an IP address"))?;
    end_entity
        .verify_is_valid_for_subject_name(&name)
        .map_err(|_| {
            format!(
                "the serving certificate is not valid for {server_name} (it names: {})",
                if leaf_info.names.is_empty() {
                    "no DNS names".to_string()
                } else {
                    leaf_info.names.join(", ")
                }
            )
        })
}

fn ca_subjects(ca_bundle: &[CertificateDer<'_>]) -> String {
    ca_bundle
        .iter()
        .map(|ca| info(ca).map(|i| i.subject).unwrap_or_else(|e| e))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `cert` is valid at `now` (Unix seconds): fails when it is expired or not yet valid,
/// warns when it expires within [`WARN_DAYS`].
pub fn expiry(what: &str, cert: &CertInfo, now: i64, fix: &str) -> Check {
    if now < cert.not_before {
        return Check::fail(
            format!("{what} is not valid yet (is the clock of this machine right?)"),
            fix,
        );
    }
    let left = cert.not_after - now;
    if left <= 0 {
        return Check::fail(
            format!(
                "{what} expired {} ago, on {}",
                days(-left),
                cert.not_after_text
            ),
            fix,
        );
    }
    let message = format!(
        "{what} is valid for another {} (until {})",
        days(left),
        cert.not_after_text
    );
    if left < WARN_DAYS * DAY {
        Check::warn(message, fix)
    } else {
        Check::ok(message)
    }
}

fn days(seconds: i64) -> String {
    match seconds / DAY {
        0 => format!("{} hours", seconds / 3600),
        1 => "1 day".to_string(),
        n => format!("{n} days"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };

    /// A CA and a leaf it signed, as PEM.
    pub(crate) struct Pki {
        pub ca_pem: String,
        pub leaf_pem: String,
    }

    /// `validity` is (not_before, not_after) as (year, month, day).
    pub(crate) fn pki(
        ca_name: &str,
        dns_names: &[&str],
        validity: ((i32, u8, u8), (i32, u8, u8)),
    ) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let names: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names.first().copied().unwrap_or("leaf"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let ((y0, m0, d0), (y1, m1, d1)) = validity;
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        let leaf = params.signed_by(&leaf_key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
        }
    }

    /// 2026-06-01T00:00:00Z.
    pub(crate) const JUNE_2026: i64 = 1_780_272_000;

    const SVC: &str = "weft.weft.svc";
    const LONG: ((i32, u8, u8), (i32, u8, u8)) = ((2026, 1, 1), (2036, 1, 1));

    fn verify(pki: &Pki, ca_pem: &str, name: &str) -> Result<(), String> {
        let chain = parse_pem(pki.leaf_pem.as_bytes(), "tls.crt").unwrap();
        let bundle = parse_pem(ca_pem.as_bytes(), "caBundle").unwrap();
        verify_serving(&chain, &bundle, name, JUNE_2026)
    }

    #[test]
    fn a_leaf_signed_by_the_bundle_for_the_service_verifies() {
        let pki = pki("weft-webhook-ca", &["weft", SVC], LONG);
        assert_eq!(verify(&pki, &pki.ca_pem, SVC), Ok(()));
    }

    #[test]
    fn a_wrong_ca_bundle_is_reported_with_both_subjects() {
        let pki_a = pki("ca-a", &[SVC], LONG);
        let pki_b = pki("ca-b", &[SVC], LONG);
        let error = verify(&pki_a, &pki_b.ca_pem, SVC).unwrap_err();
        assert!(error.contains("not signed by the caBundle's CA"), "{error}");
        assert!(error.contains("CN=ca-b"), "{error}");
    }

    #[test]
    fn a_leaf_for_another_name_is_reported_with_its_names() {
        let pki = pki("ca", &["other.weft.svc"], LONG);
        let error = verify(&pki, &pki.ca_pem, SVC).unwrap_err();
        assert_eq!(
            error,
            "the serving certificate is not valid for weft.weft.svc (it names: other.weft.svc)"
        );
    }

    #[test]
    fn an_expired_leaf_still_verifies_its_chain() {
        let pki = pki("ca", &[SVC], ((2020, 1, 1), (2021, 1, 1)));
        assert_eq!(verify(&pki, &pki.ca_pem, SVC), Ok(()));
    }

    #[test]
    fn bad_pem_is_reported_not_panicked_on() {
        assert_eq!(
            parse_pem(b"hello", "caBundle").unwrap_err(),
            "caBundle holds no PEM CERTIFICATE"
        );
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(broken.as_bytes(), "tls.crt")
            .unwrap_err()
            .starts_with("tls.crt is not valid PEM"));
        let garbage = CertificateDer::from(vec![1, 2, 3]);
        assert!(info(&garbage).is_err());
        assert!(verify_serving(
            std::slice::from_ref(&garbage),
            std::slice::from_ref(&garbage),
            SVC,
            JUNE_2026
        )
        .is_err());
    }

    #[test]
    fn expiry_warns_within_30_days_and_fails_when_expired() {
        let at = |not_after: (i32, u8, u8)| {
            let pki = pki("ca", &[SVC], ((2026, 1, 1), not_after));
            let chain = parse_pem(pki.leaf_pem.as_bytes(), "tls.crt").unwrap();
            let info = info(&chain[0]).unwrap();
            expiry("the serving certificate", &info, JUNE_2026, "renew it")
        };
        let ok = at((2027, 1, 1));
        assert_eq!(ok.status, super::super::Status::Ok);
        assert!(ok.message.contains("214 days"), "{}", ok.message);

        let soon = at((2026, 6, 11));
        assert_eq!(soon.status, super::super::Status::Warn);
        assert!(soon.message.contains("10 days"), "{}", soon.message);
        assert_eq!(soon.fix.as_deref(), Some("renew it"));

        let expired = at((2026, 5, 1));
        assert_eq!(expired.status, super::super::Status::Fail);
        assert!(
            expired.message.contains("expired 31 days ago"),
            "{}",
            expired.message
        );
    }
}
