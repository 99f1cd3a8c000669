//! The issuer: a CA certificate chain and its key (a `kubernetes.io/tls` Secret's `tls.crt` and
//! `tls.key`, as cert-manager writes them) and the trust anchors the proxies verify against. Checked
//! when loaded; signs short-lived leaf certificates for identities.

use super::{csr::ValidCsr, key};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{pem::PemObject, CertificateDer};
use std::{
    fmt, io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio_rustls::rustls::crypto::SecureRandom;
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

/// How far in the past a leaf's validity starts, so that a peer whose clock is a little behind
/// accepts it at once.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(20);

/// Where the issuer's credentials are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerFiles {
    /// PEM certificates: the issuer's CA certificate first, then any intermediates up to (and
    /// optionally including) a trust anchor.
    pub certs: PathBuf,
    /// PEM private key of the issuer's certificate.
    pub key: PathBuf,
    /// PEM trust anchors: the roots the proxies verify peers against.
    pub anchors: PathBuf,
}

/// The contents of the three files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerPem {
    pub certs: Vec<u8>,
    pub key: Vec<u8>,
    pub anchors: Vec<u8>,
}

/// Why an issuer cannot be used. Each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("{path}: the issuer certificate is not a CA (it needs basicConstraints CA:TRUE)")]
    NotCa { path: PathBuf },
    #[error("{path}: the issuer certificate expired at {not_after} (Unix time)")]
    Expired { path: PathBuf, not_after: i64 },
    #[error("{key}: the private key does not belong to the issuer certificate in {certs}")]
    KeyMismatch { key: PathBuf, certs: PathBuf },
    #[error(
        "{certs}: the issuer certificate does not chain to a trust anchor in {anchors}: {problem}"
    )]
    NotChained {
        certs: PathBuf,
        anchors: PathBuf,
        problem: String,
    },
}

/// Why a certificate could not be signed (a bug or an unusable name, never the caller's key).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the identity `{0}` cannot be a DNS SAN: {1}")]
    Name(String, rcgen::Error),
    #[error("signing failed: {0}")]
    Sign(#[from] rcgen::Error),
}

/// A certificate issued for an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub leaf: CertificateDer<'static>,
    /// The issuer's chain, issuer first, trust anchors excluded.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The leaf's notAfter.
    pub valid_until: SystemTime,
}

/// A loaded, checked issuer.
pub struct Issuer {
    signer: rcgen::Issuer<'static, KeyPair>,
    intermediates: Vec<CertificateDer<'static>>,
    anchors: Vec<CertificateDer<'static>>,
    not_after: SystemTime,
    random: &'static dyn SecureRandom,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("intermediates", &self.intermediates.len())
            .field("anchors", &self.anchors.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl IssuerFiles {
    /// Reads the three files.
    pub fn read(&self) -> Result<IssuerPem, IssuerError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| IssuerError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(IssuerPem {
            certs: read(&self.certs)?,
            key: read(&self.key)?,
            anchors: read(&self.anchors)?,
        })
    }
}

impl Issuer {
    /// Reads and checks the issuer files at `now`.
    pub fn load(files: &IssuerFiles, now: SystemTime) -> Result<Self, IssuerError> {
        Self::from_pem(files, &files.read()?, now)
    }

    /// Checks PEM contents (`files` only names them in errors): the issuer certificate is a CA,
    /// has not expired, matches the key, and chains (through the certificates after it) to one of
    /// the trust anchors.
    pub fn from_pem(
        files: &IssuerFiles,
        pem: &IssuerPem,
        now: SystemTime,
    ) -> Result<Self, IssuerError> {
        let certs = parse_certs(&files.certs, &pem.certs, "the issuer certificate first")?;
        let anchors = parse_certs(&files.anchors, &pem.anchors, "the trust anchors")?;
        let key = key::parse_pem(&pem.key).map_err(|problem| IssuerError::Pem {
            path: files.key.clone(),
            problem,
        })?;

        let parsed = certs
            .iter()
            .map(|der| parse_x509(&files.certs, der))
            .collect::<Result<Vec<_>, _>>()?;
        let parsed_anchors = anchors
            .iter()
            .map(|der| parse_x509(&files.anchors, der))
            .collect::<Result<Vec<_>, _>>()?;
        let issuer = &parsed[0];
        if !issuer.is_ca() {
            return Err(IssuerError::NotCa {
                path: files.certs.clone(),
            });
        }
        let not_after = issuer.validity().not_after.timestamp();
        if unix_seconds(now) > not_after {
            return Err(IssuerError::Expired {
                path: files.certs.clone(),
                not_after,
            });
        }
        if issuer.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(IssuerError::KeyMismatch {
                key: files.key.clone(),
                certs: files.certs.clone(),
            });
        }
        let chain_len =
            chain_to_anchor(&certs, &parsed, &anchors, &parsed_anchors).map_err(|problem| {
                IssuerError::NotChained {
                    certs: files.certs.clone(),
                    anchors: files.anchors.clone(),
                    problem,
                }
            })?;

        let signer =
            rcgen::Issuer::from_ca_cert_der(&certs[0], key).map_err(|e| IssuerError::Pem {
                path: files.certs.clone(),
                problem: format!("the issuer certificate cannot sign: {e}"),
            })?;
        let mut intermediates = certs;
        intermediates.truncate(chain_len);
        Ok(Self {
            signer,
            intermediates,
            anchors,
            not_after: UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
            random: tokio_rustls::rustls::crypto::ring::default_provider().secure_random,
        })
    }

    /// When the issuer certificate expires; no leaf outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The trust anchors (DER), as loaded.
    pub fn anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    /// Signs a certificate for the key of a checked CSR.
    pub fn sign_csr(
        &self,
        csr: &ValidCsr,
        identity: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Issued, SignError> {
        self.sign(&CsrKey(&csr.public_key), identity, lifetime, now)
    }

    /// Signs a certificate for `key`, e.g. one the controller generated for its own identity.
    pub fn sign(
        &self,
        key: &impl PublicKeyData,
        identity: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Issued, SignError> {
        let now_s = unix_seconds(now);
        let not_before = now_s - CLOCK_SKEW_ALLOWANCE.as_secs() as i64;
        let not_after =
            (now_s.saturating_add(lifetime.as_secs() as i64)).min(unix_seconds(self.not_after));

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, identity);
        let dns = identity
            .try_into()
            .map_err(|e| SignError::Name(identity.to_string(), e))?;
        params.subject_alt_names = vec![SanType::DnsName(dns)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = datetime(not_before);
        params.not_after = datetime(not_after);
        let mut serial = [0u8; 16];
        self.random
            .fill(&mut serial)
            .map_err(|_| SignError::Sign(rcgen::Error::RingUnspecified))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));

        let leaf = params.signed_by(key, &self.signer)?;
        Ok(Issued {
            leaf: leaf.der().clone(),
            intermediates: self.intermediates.clone(),
            valid_until: UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
        })
    }
}

/// A P-256 public key from a CSR, for rcgen.
struct CsrKey<'a>(&'a [u8]);

impl PublicKeyData for CsrKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

fn parse_certs(
    path: &Path,
    pem: &[u8],
    expected: &str,
) -> Result<Vec<CertificateDer<'static>>, IssuerError> {
    let error = |problem: String| IssuerError::Pem {
        path: path.to_path_buf(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(error(format!(
            "no certificate (expected PEM CERTIFICATE blocks, {expected})"
        )));
    }
    Ok(certs)
}

fn parse_x509<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, IssuerError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| IssuerError::Pem {
            path: path.to_path_buf(),
            problem: format!("a certificate cannot be parsed: {e}"),
        })
}

/// Checks that each certificate is signed by the next and that the chain ends at (or is signed
/// by) a trust anchor. Returns how many certificates precede the first anchor: the intermediates
/// a leaf's chain carries.
fn chain_to_anchor(
    certs: &[CertificateDer<'_>],
    parsed: &[X509Certificate<'_>],
    anchors: &[CertificateDer<'_>],
    parsed_anchors: &[X509Certificate<'_>],
) -> Result<usize, String> {
    for (i, cert) in certs.iter().enumerate() {
        if anchors.contains(cert) {
            return Ok(i);
        }
        let issued = &parsed[i];
        if let Some(next) = parsed.get(i + 1) {
            issued
                .verify_signature(Some(next.public_key()))
                .map_err(|e| {
                    format!(
                    "certificate {} (`{}`) is not signed by certificate {} (`{}`) after it: {e}",
                    i + 1,
                    issued.subject(),
                    i + 2,
                    next.subject()
                )
                })?;
        } else {
            let signed = parsed_anchors.iter().any(|anchor| {
                anchor.subject() == issued.issuer()
                    && issued.verify_signature(Some(anchor.public_key())).is_ok()
            });
            if !signed {
                return Err(format!(
                    "no trust anchor signed `{}` (issued by `{}`)",
                    issued.subject(),
                    issued.issuer()
                ));
            }
        }
    }
    Ok(certs.len())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn datetime(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("certificate times are within a few years of now, inside OffsetDateTime's range")
}

#[cfg(test)]
mod tests;
