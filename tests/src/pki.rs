//! Test certificates: a CA and a serving certificate for 127.0.0.1 and localhost.

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where a [`Pki`] was written.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn generate(name: &str) -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} e2e CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    pub fn write(&self, dir: &Path) -> Result<PkiFiles> {
        let files = PkiFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        std::fs::write(&files.cert, &self.cert_pem)?;
        std::fs::write(&files.key, &self.key_pem)?;
        Ok(files)
    }

    /// The CA bundle as a webhook's `caBundle` wants it.
    pub fn ca_bundle(&self) -> k8s_openapi::ByteString {
        k8s_openapi::ByteString(self.ca_pem.clone().into_bytes())
    }

    pub fn server_config(&self) -> Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>> {
        use tokio_rustls::rustls::{
            self,
            pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        };
        let certs = vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(std::sync::Arc::new(config))
    }

    pub fn client_config(&self) -> Result<std::sync::Arc<tokio_rustls::rustls::ClientConfig>> {
        use tokio_rustls::rustls::{
            self,
            pki_types::{pem::PemObject, CertificateDer},
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes())?)?;
        Ok(std::sync::Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    }
}
