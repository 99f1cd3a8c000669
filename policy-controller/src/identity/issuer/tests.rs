#![allow(clippy::unwrap_used)]
use super::*;
use crate::identity::{
    csr::{tests::proxy_csr, validate},
    test_pki::{ca_params, files, verify_leaf, TestPki, DAY},
};
use x509_parser::extensions::GeneralName;

const ID: &str = "web.emojivoto.serviceaccount.identity.weft.cluster.local";

fn paths() -> IssuerFiles {
    files(Path::new("/var/run/weft/issuer"))
}

#[test]
fn a_leaf_has_the_identity_and_chains_to_the_anchor_as_server_and_client() {
    let pki = TestPki::new(365 * DAY);
    let now = SystemTime::now();
    let issuer = Issuer::from_pem(&paths(), &pki.pem(), now).unwrap();
    let (_, csr) = proxy_csr(ID);
    let csr = validate(&csr, ID).unwrap();
    let lifetime = Duration::from_secs(24 * 3600);
    let issued = issuer.sign_csr(&csr, ID, lifetime, now).unwrap();

    assert_eq!(issued.intermediates.len(), 1, "the issuer, not the root");
    assert_eq!(
        issued.intermediates[0],
        CertificateDer::from_pem_slice(pki.issuer_pem.as_bytes()).unwrap()
    );
    let (_, leaf) = X509Certificate::from_der(&issued.leaf).unwrap();
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        csr.public_key.as_slice()
    );
    let san = leaf.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(san.general_names, vec![GeneralName::DNSName(ID)]);
    let cn: Vec<_> = leaf
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap())
        .collect();
    assert_eq!(cn, [ID]);
    assert!(!leaf.is_ca());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let now_s = unix_seconds(now);
    assert_eq!(
        leaf.validity().not_before.timestamp(),
        now_s - CLOCK_SKEW_ALLOWANCE.as_secs() as i64
    );
    assert_eq!(leaf.validity().not_after.timestamp(), now_s + 24 * 3600);
    assert_eq!(unix_seconds(issued.valid_until), now_s + 24 * 3600);

    verify_leaf(
        &issued.leaf,
        &issued.intermediates,
        &pki.root_der(),
        ID,
        now,
    )
    .unwrap();
    // Within the clock-skew allowance before `now`, too.
    verify_leaf(
        &issued.leaf,
        &issued.intermediates,
        &pki.root_der(),
        ID,
        now - Duration::from_secs(10),
    )
    .unwrap();
    assert!(
        verify_leaf(
            &issued.leaf,
            &issued.intermediates,
            &pki.root_der(),
            "other.emojivoto.serviceaccount.identity.weft.cluster.local",
            now
        )
        .is_err(),
        "not valid for another name"
    );
    assert!(
        verify_leaf(
            &issued.leaf,
            &issued.intermediates,
            &pki.root_der(),
            ID,
            now + lifetime + Duration::from_secs(1)
        )
        .is_err(),
        "expired after its lifetime"
    );

    // Two certificates for the same key get different serials.
    let again = issuer.sign_csr(&csr, ID, lifetime, now).unwrap();
    let (_, again) = X509Certificate::from_der(&again.leaf).unwrap();
    assert_ne!(leaf.serial, again.serial);
}

#[test]
fn the_lifetime_is_capped_by_the_issuers_expiry() {
    let pki = TestPki::new(Duration::from_secs(3600));
    let now = SystemTime::now();
    let issuer = Issuer::from_pem(&paths(), &pki.pem(), now).unwrap();
    let (_, csr) = proxy_csr(ID);
    let csr = validate(&csr, ID).unwrap();
    let issued = issuer.sign_csr(&csr, ID, DAY, now).unwrap();
    assert_eq!(issued.valid_until, issuer.not_after());
    let (_, leaf) = X509Certificate::from_der(&issued.leaf).unwrap();
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        unix_seconds(issuer.not_after())
    );
    assert!(unix_seconds(issuer.not_after()) <= unix_seconds(now) + 3600);
}

#[test]
fn a_chain_including_the_root_and_a_self_signed_issuer_are_accepted() {
    let pki = TestPki::new(365 * DAY);
    let mut pem = pki.pem();
    pem.certs.extend_from_slice(pki.root_pem.as_bytes());
    let issuer = Issuer::from_pem(&paths(), &pem, SystemTime::now()).unwrap();
    assert_eq!(issuer.intermediates.len(), 1, "the root is not sent");

    // The root as the issuer: no intermediates.
    let now = SystemTime::now();
    let key = KeyPair::generate().unwrap();
    let root = ca_params("root", now - DAY, now + DAY)
        .self_signed(&key)
        .unwrap();
    let pem = IssuerPem {
        certs: root.pem().into_bytes(),
        key: key.serialize_pem().into_bytes(),
        anchors: root.pem().into_bytes(),
    };
    let issuer = Issuer::from_pem(&paths(), &pem, now).unwrap();
    assert!(issuer.intermediates.is_empty());
    let key = KeyPair::generate().unwrap();
    let issued = issuer.sign(&key, ID, DAY, now).unwrap();
    verify_leaf(&issued.leaf, &[], root.der(), ID, now).unwrap();
}

#[test]
fn a_sec1_issuer_key_as_cert_manager_writes_it_is_accepted() {
    let now = SystemTime::now();
    let key = key::parse_pem(include_bytes!("../testdata/issuer-sec1.key")).unwrap();
    let root = ca_params("root", now - DAY, now + DAY)
        .self_signed(&key)
        .unwrap();
    let pem = IssuerPem {
        certs: root.pem().into_bytes(),
        key: include_bytes!("../testdata/issuer-sec1.key").to_vec(),
        anchors: root.pem().into_bytes(),
    };
    Issuer::from_pem(&paths(), &pem, now).unwrap();
}

/// The error's message, which must name `file`.
fn load_error(pem: &IssuerPem, now: SystemTime, file: &str) -> IssuerError {
    let error = Issuer::from_pem(&paths(), pem, now).unwrap_err();
    assert!(error.to_string().contains(file), "{file}: {error}");
    error
}

#[test]
fn unusable_issuers_are_refused_naming_the_file_and_problem() {
    let now = SystemTime::now();
    let pki = TestPki::new(365 * DAY);

    // Not a CA: a leaf signed by the issuer, with its own key.
    let issuer = Issuer::from_pem(&paths(), &pki.pem(), now).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = issuer.sign(&key, ID, DAY, now).unwrap();
    let mut pem = pki.pem();
    pem.certs = pem_cert(&leaf.leaf);
    pem.key = key.serialize_pem().into_bytes();
    let error = load_error(&pem, now, "tls.crt");
    assert!(matches!(error, IssuerError::NotCa { .. }), "{error}");
    assert!(error.to_string().contains("not a CA"), "{error}");

    // Expired.
    let error = load_error(&pki.pem(), now + 366 * DAY, "tls.crt");
    assert!(matches!(error, IssuerError::Expired { .. }), "{error}");
    assert!(error.to_string().contains("expired"), "{error}");

    // Key mismatch.
    let mut pem = pki.pem();
    pem.key = KeyPair::generate().unwrap().serialize_pem().into_bytes();
    let error = load_error(&pem, now, "tls.key");
    assert!(matches!(error, IssuerError::KeyMismatch { .. }), "{error}");
    assert!(error.to_string().contains("does not belong"), "{error}");

    // Not chained to the anchors: another root.
    let mut pem = pki.pem();
    pem.anchors = TestPki::new(DAY).root_pem.into_bytes();
    let error = load_error(&pem, now, "ca-bundle.crt");
    assert!(matches!(error, IssuerError::NotChained { .. }), "{error}");
    assert!(
        error.to_string().contains("no trust anchor signed"),
        "{error}"
    );

    // A chain whose second certificate did not sign the first.
    let mut pem = pki.pem();
    pem.certs
        .extend_from_slice(TestPki::new(DAY).root_pem.as_bytes());
    let error = load_error(&pem, now, "tls.crt");
    assert!(
        error.to_string().contains("is not signed by certificate 2"),
        "{error}"
    );

    // Garbage.
    let mut pem = pki.pem();
    pem.anchors = b"nothing here\n".to_vec();
    let error = load_error(&pem, now, "ca-bundle.crt");
    assert!(error.to_string().contains("no certificate"), "{error}");
    let mut pem = pki.pem();
    pem.key = pki.issuer_pem.clone().into_bytes();
    let error = load_error(&pem, now, "tls.key");
    assert!(error.to_string().contains("no private key"), "{error}");
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let error = Issuer::load(&files(dir.path()), SystemTime::now()).unwrap_err();
    assert!(matches!(error, IssuerError::Read { .. }), "{error}");
    assert!(error.to_string().contains("tls.crt"), "{error}");
}

fn pem_cert(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
    .into_bytes()
}
