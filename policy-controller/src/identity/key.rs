//! Private keys from PEM in the encodings cert-manager and `openssl` write: PKCS#8 (`PRIVATE
//! KEY`), SEC1 (`EC PRIVATE KEY`, cert-manager's default for ECDSA) and PKCS#1 (`RSA PRIVATE
//! KEY`). ring, which signs for us, reads PKCS#8 only, so the other two are wrapped in a PKCS#8
//! envelope first (RFC 5208 §5 / RFC 5915 §3: the same key, with its algorithm named outside).

use rcgen::KeyPair;
use rustls_pki_types::{pem::PemObject, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The DER of `SEQUENCE { OID id-ecPublicKey, OID <curve> }` for the curves ring signs with.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const EC_P384_ALGORITHM: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];
/// `SEQUENCE { OID rsaEncryption, NULL }`.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Parses the first private key in `pem`. The error says what was found instead.
pub(crate) fn parse_pem(pem: &[u8]) -> Result<KeyPair, String> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        format!("no private key (expected a PKCS#8, SEC1 or PKCS#1 PEM block): {e}")
    })?;
    let attempts: Vec<Vec<u8>> = match &key {
        PrivateKeyDer::Pkcs8(der) => vec![der.secret_pkcs8_der().to_vec()],
        PrivateKeyDer::Sec1(der) => [EC_P256_ALGORITHM, EC_P384_ALGORITHM]
            .iter()
            .map(|algorithm| pkcs8(algorithm, der.secret_sec1_der()))
            .collect(),
        PrivateKeyDer::Pkcs1(der) => vec![pkcs8(RSA_ALGORITHM, der.secret_pkcs1_der())],
        _ => return Err("unsupported private key encoding".to_string()),
    };
    let mut last = String::new();
    for der in attempts {
        match KeyPair::try_from(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))) {
            Ok(pair) => return Ok(pair),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "the private key cannot be used for signing (ECDSA P-256/P-384, RSA or Ed25519 expected): {last}"
    ))
}

/// `PrivateKeyInfo ::= SEQUENCE { version 0, algorithm, privateKey OCTET STRING }`.
fn pkcs8(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(algorithm);
    body.extend(tlv(0x04, key));
    tlv(0x30, &body)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sec1_and_pkcs8_keys_load() {
        // `openssl ecparam -name prime256v1 -genkey -noout` (SEC1) and the same key as PKCS#8.
        let sec1 = parse_pem(include_bytes!("testdata/issuer-sec1.key")).unwrap();
        let pkcs8 = parse_pem(include_bytes!("testdata/issuer-pkcs8.key")).unwrap();
        assert_eq!(sec1.public_key_raw(), pkcs8.public_key_raw());
        assert_eq!(sec1.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);

        let generated = KeyPair::generate().unwrap();
        let loaded = parse_pem(generated.serialize_pem().as_bytes()).unwrap();
        assert_eq!(loaded.public_key_raw(), generated.public_key_raw());
    }

    #[test]
    fn non_keys_are_refused_with_what_is_expected() {
        let error = parse_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(
            error.contains("expected a PKCS#8, SEC1 or PKCS#1"),
            "{error}"
        );
        let error =
            parse_pem(b"-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----\n")
                .unwrap_err();
        assert!(error.contains("cannot be used for signing"), "{error}");
    }

    #[test]
    fn long_lengths_are_encoded_in_long_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 1200])[..4], [0x04, 0x82, 0x04, 0xb0]);
    }
}
