//! Certificate signing requests as proxies make them (ECDSA P-256 key, the identity as the one DNS
//! SAN and as the common name), checked before anything is signed.

use x509_parser::{
    certification_request::X509CertificationRequest,
    extensions::{GeneralName, ParsedExtension},
    oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION},
    prelude::FromDer,
};

/// A CSR that passed every check: the P-256 public key to certify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidCsr {
    /// The uncompressed (or compressed) EC point, as the SubjectPublicKeyInfo carries it.
    pub(crate) public_key: Vec<u8>,
}

/// Why a CSR is refused. Each message names what was wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the CSR is not a DER-encoded PKCS#10 certification request: {0}")]
    Malformed(String),
    #[error("the CSR's signature does not verify with its own public key: {0}")]
    BadSignature(String),
    #[error("the CSR's key is {0}; only ECDSA P-256 keys are certified")]
    UnsupportedKey(String),
    #[error("the CSR has no DNS SAN; expected exactly one, the requested identity `{0}`")]
    NoSan(String),
    #[error("the CSR has {count} SANs; expected exactly one, the DNS name `{identity}`")]
    TooManySans { count: usize, identity: String },
    #[error("the CSR's SAN is {kind}; expected a DNS name, the requested identity `{identity}`")]
    NotDnsSan { kind: String, identity: String },
    #[error("the CSR's DNS SAN `{san}` does not match the requested identity `{identity}`")]
    SanMismatch { san: String, identity: String },
    #[error("the CSR's common name `{cn}` does not match the requested identity `{identity}` (it may also be empty)")]
    CommonNameMismatch { cn: String, identity: String },
}

impl CsrError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "csr_malformed",
            Self::BadSignature(_) => "csr_bad_signature",
            Self::UnsupportedKey(_) => "csr_unsupported_key",
            Self::NoSan(_) | Self::TooManySans { .. } | Self::NotDnsSan { .. } => "csr_bad_san",
            Self::SanMismatch { .. } => "csr_name_mismatch",
            Self::CommonNameMismatch { .. } => "csr_common_name_mismatch",
        }
    }
}

/// Checks a DER CSR for `identity`: it parses, its signature verifies with its own key, the key is
/// ECDSA P-256, its only SAN is the DNS name `identity`, and its common name is absent, empty or
/// `identity`. Other requested extensions are ignored: the issuer decides what the certificate
/// carries.
pub fn validate(der: &[u8], identity: &str) -> Result<ValidCsr, CsrError> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(format!(
            "{} bytes follow the request",
            rest.len()
        )));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        let kind = if *algorithm == OID_PKCS1_RSAENCRYPTION {
            "RSA".to_string()
        } else {
            format!("of algorithm {algorithm}")
        };
        return Err(CsrError::UnsupportedKey(kind));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if curve.as_ref() != Some(&OID_EC_P256) {
        let curve = match curve {
            Some(oid) if oid.to_id_string() == "1.3.132.0.34" => "P-384 (1.3.132.0.34)".into(),
            Some(oid) if oid.to_id_string() == "1.3.132.0.35" => "P-521 (1.3.132.0.35)".into(),
            Some(oid) => oid.to_id_string(),
            None => "unnamed".to_string(),
        };
        return Err(CsrError::UnsupportedKey(format!("ECDSA on curve {curve}")));
    }
    csr.verify_signature()
        .map_err(|e| CsrError::BadSignature(e.to_string()))?;

    let mut sans = Vec::new();
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            sans.extend(san.general_names.iter());
        }
    }
    let identity_owned = || identity.to_string();
    match sans.as_slice() {
        [] => return Err(CsrError::NoSan(identity_owned())),
        [GeneralName::DNSName(name)] if *name == identity => {}
        [GeneralName::DNSName(name)] => {
            return Err(CsrError::SanMismatch {
                san: name.to_string(),
                identity: identity_owned(),
            })
        }
        [other] => {
            return Err(CsrError::NotDnsSan {
                kind: describe(other),
                identity: identity_owned(),
            })
        }
        more => {
            return Err(CsrError::TooManySans {
                count: more.len(),
                identity: identity_owned(),
            })
        }
    }

    for cn in info.subject.iter_common_name() {
        let cn = cn
            .as_str()
            .map_err(|e| CsrError::Malformed(format!("the common name is not a string: {e}")))?;
        if !cn.is_empty() && cn != identity {
            return Err(CsrError::CommonNameMismatch {
                cn: cn.to_string(),
                identity: identity_owned(),
            });
        }
    }

    Ok(ValidCsr {
        public_key: spki.subject_public_key.data.to_vec(),
    })
}

fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("the IP address {}", std::net::Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("the IP address {}", std::net::Ipv6Addr::from(v6)),
                Err(_) => "an IP address".to_string(),
            },
        },
        GeneralName::URI(uri) => format!("the URI `{uri}`"),
        GeneralName::RFC822Name(email) => format!("the email address `{email}`"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, KeyPair, SanType, PKCS_ECDSA_P384_SHA384,
    };
    use rustls_pki_types::pem::PemObject;

    const ID: &str = "web.emojivoto.serviceaccount.identity.weft.cluster.local";

    /// A CSR as the proxy makes it: P-256, CN and DNS SAN = `name`.
    pub(crate) fn proxy_csr(name: &str) -> (KeyPair, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let csr = csr_with(&key, Some(name), vec![dns(name)]);
        (key, csr)
    }

    pub(crate) fn csr_with(key: &KeyPair, cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    #[test]
    fn a_proxy_csr_is_accepted() {
        let (key, csr) = proxy_csr(ID);
        let valid = validate(&csr, ID).unwrap();
        assert_eq!(valid.public_key, key.public_key_raw());

        // No common name, or an empty one, is fine too.
        let key = KeyPair::generate().unwrap();
        assert!(validate(&csr_with(&key, None, vec![dns(ID)]), ID).is_ok());
        assert!(validate(&csr_with(&key, Some(""), vec![dns(ID)]), ID).is_ok());
    }

    #[test]
    fn refusals_name_what_was_wrong() {
        let p256 = KeyPair::generate().unwrap();
        let other = "evil.emojivoto.serviceaccount.identity.weft.cluster.local";
        let cases: Vec<(&str, Vec<u8>, CsrError, &str)> = vec![
            (
                "wrong name",
                csr_with(&p256, Some(other), vec![dns(other)]),
                CsrError::SanMismatch {
                    san: other.into(),
                    identity: ID.into(),
                },
                "DNS SAN `evil.",
            ),
            (
                "extra SAN",
                csr_with(&p256, Some(ID), vec![dns(ID), dns(other)]),
                CsrError::TooManySans {
                    count: 2,
                    identity: ID.into(),
                },
                "2 SANs",
            ),
            (
                "IP SAN",
                csr_with(
                    &p256,
                    Some(ID),
                    vec![SanType::IpAddress("10.1.2.3".parse().unwrap())],
                ),
                CsrError::NotDnsSan {
                    kind: "the IP address 10.1.2.3".into(),
                    identity: ID.into(),
                },
                "IP address 10.1.2.3",
            ),
            (
                "DNS plus IP SAN",
                csr_with(
                    &p256,
                    Some(ID),
                    vec![dns(ID), SanType::IpAddress("10.1.2.3".parse().unwrap())],
                ),
                CsrError::TooManySans {
                    count: 2,
                    identity: ID.into(),
                },
                "expected exactly one",
            ),
            (
                "no SAN",
                csr_with(&p256, Some(ID), vec![]),
                CsrError::NoSan(ID.into()),
                "no DNS SAN",
            ),
            (
                "CN mismatch",
                csr_with(&p256, Some("admin"), vec![dns(ID)]),
                CsrError::CommonNameMismatch {
                    cn: "admin".into(),
                    identity: ID.into(),
                },
                "common name `admin`",
            ),
            (
                "P-384 key",
                csr_with(
                    &KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
                    Some(ID),
                    vec![dns(ID)],
                ),
                CsrError::UnsupportedKey("ECDSA on curve P-384 (1.3.132.0.34)".into()),
                "only ECDSA P-256",
            ),
            (
                "RSA key",
                // ring cannot generate RSA keys: made once with `openssl req -new -newkey
                // rsa:2048 -subj /CN=<ID> -addext subjectAltName=DNS:<ID>`.
                rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(include_bytes!(
                    "testdata/rsa.csr.pem"
                ))
                .unwrap()
                .as_ref()
                .to_vec(),
                CsrError::UnsupportedKey("RSA".into()),
                "key is RSA",
            ),
        ];
        for (case, csr, expected, message) in cases {
            let error = validate(&csr, ID).unwrap_err();
            assert_eq!(error, expected, "{case}");
            assert!(error.to_string().contains(message), "{case}: {error}");
        }
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let (_, mut csr) = proxy_csr(ID);
        // The signature's last byte is the last byte of `s`: the DER stays valid.
        let last = csr.len() - 1;
        csr[last] ^= 0x01;
        let error = validate(&csr, ID).unwrap_err();
        assert!(matches!(error, CsrError::BadSignature(_)), "{error}");
        assert!(error.to_string().contains("signature"), "{error}");
    }

    #[test]
    fn garbage_is_malformed() {
        for bytes in [&b""[..], b"not a csr", &[0x30, 0x03, 0x02, 0x01, 0x00]] {
            let error = validate(bytes, ID).unwrap_err();
            assert!(matches!(error, CsrError::Malformed(_)), "{error}");
        }
        let (_, mut csr) = proxy_csr(ID);
        csr.push(0);
        assert_eq!(
            validate(&csr, ID),
            Err(CsrError::Malformed("1 bytes follow the request".into()))
        );
    }
}
