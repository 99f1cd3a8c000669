//! What the integration tests share: test certificates, and the real controller run without a
//! cluster.

pub mod controller;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use std::{path::Path, sync::Arc};
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer},
};

/// A CA and a serving certificate for `localhost` and 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    pub fn generate(name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `tls.crt` and `tls.key` into `dir`.
    pub fn write(&self, dir: &Path) {
        // Write-then-rename, as a Secret volume update does, so the server never reads half a file.
        for (name, pem) in [("tls.crt", &self.cert_pem), ("tls.key", &self.key_pem)] {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, pem).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        }
    }

    /// A client configuration that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// Writes a self-signed identity issuer (also the trust anchor) under `dir/identity/` and returns
/// the controller flags that use it, with its gRPC server on `grpc_addr`. (Not every test binary
/// that includes this module runs the controller.)
#[allow(dead_code)]
pub fn identity_args(dir: &Path, grpc_addr: std::net::SocketAddr) -> Vec<String> {
    let dir = dir.join("identity");
    std::fs::create_dir_all(&dir).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "identity.weft.cluster.local");
    let key = KeyPair::generate().unwrap();
    let issuer = params.self_signed(&key).unwrap();
    for (name, pem) in [
        ("ca.crt", issuer.pem()),
        ("tls.crt", issuer.pem()),
        ("tls.key", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    vec![
        format!("--grpc-addr={grpc_addr}"),
        format!(
            "--identity-trust-anchors-file={}",
            dir.join("ca.crt").display()
        ),
        format!("--identity-issuer-certs={}", dir.join("tls.crt").display()),
        format!("--identity-issuer-key={}", dir.join("tls.key").display()),
    ]
}
