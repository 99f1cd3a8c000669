//! A root and an issuer signed by it, made with rcgen, for tests.
#![allow(clippy::unwrap_used)]

use super::issuer::{IssuerFiles, IssuerPem};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, UnixTime};
use std::{
    path::Path,
    time::{Duration, SystemTime},
};

pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

pub(crate) struct TestPki {
    pub root_pem: String,
    pub issuer_pem: String,
    pub issuer_key_pem: String,
}

pub(crate) fn ca_params(cn: &str, from: SystemTime, until: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = from.into();
    params.not_after = until.into();
    params
}

impl TestPki {
    /// A root valid for ten years and an issuer valid for `issuer_lifetime` from now.
    pub fn new(issuer_lifetime: Duration) -> Self {
        let now = SystemTime::now();
        let root = CertifiedIssuer::self_signed(
            ca_params("root.weft.test", now - DAY, now + 3650 * DAY),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let key = KeyPair::generate().unwrap();
        let issuer = ca_params(
            "identity.weft.cluster.local",
            now - DAY,
            now + issuer_lifetime,
        )
        .signed_by(&key, &root)
        .unwrap();
        Self {
            root_pem: root.pem(),
            issuer_pem: issuer.pem(),
            issuer_key_pem: key.serialize_pem(),
        }
    }

    pub fn pem(&self) -> IssuerPem {
        IssuerPem {
            certs: self.issuer_pem.clone().into_bytes(),
            key: self.issuer_key_pem.clone().into_bytes(),
            anchors: self.root_pem.clone().into_bytes(),
        }
    }

    pub fn root_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.root_pem.as_bytes()).unwrap()
    }

    /// Write-then-rename each file, as a Secret volume update does.
    pub fn write(&self, dir: &Path) -> IssuerFiles {
        let files = files(dir);
        replace(&files.certs, &self.issuer_pem);
        replace(&files.key, &self.issuer_key_pem);
        replace(&files.anchors, &self.root_pem);
        files
    }
}

pub(crate) fn files(dir: &Path) -> IssuerFiles {
    IssuerFiles {
        certs: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        anchors: dir.join("ca-bundle.crt"),
    }
}

pub(crate) fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Verifies `leaf` (with `intermediates`) to `anchor` for `name`, as a server and as a client, at
/// `at`, with rustls-webpki (what the proxy's rustls does).
pub(crate) fn verify_leaf(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchor: &CertificateDer<'_>,
    name: &str,
    at: SystemTime,
) -> Result<(), webpki::Error> {
    let anchors = [webpki::anchor_from_trusted_cert(anchor)?];
    let ee = webpki::EndEntityCert::try_from(leaf)?;
    let algs = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let time = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    for usage in [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ] {
        ee.verify_for_usage(&algs, &anchors, intermediates, time, usage, None, None)?;
    }
    let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    ee.verify_is_valid_for_subject_name(&name)
}
