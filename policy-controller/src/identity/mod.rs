//! The identity service (`io.linkerd.proxy.identity.Identity/Certify`): proxies trade their
//! service-account token and a CSR for a short-lived certificate naming their identity.
//!
//! Pure pieces: identity names ([`name`]), CSR checks ([`csr`]), the issuer and signing
//! ([`issuer`], [`key`]). Connecting pieces: reloading the issuer files ([`reload`]), the
//! TokenReview ([`token`]), the gRPC service ([`service`]) and its metrics ([`metrics`]).

pub mod csr;
pub mod issuer;
mod key;
pub mod metrics;
pub mod name;
pub mod reload;
pub mod service;
#[cfg(test)]
pub(crate) mod test_pki;
pub mod token;

pub use self::{
    csr::{validate as validate_csr, CsrError, ValidCsr},
    issuer::{Issued, Issuer, IssuerError, IssuerFiles, IssuerPem, SignError},
    metrics::IdentityMetrics,
    name::{IdentityDomain, NameError},
    reload::{IssuerStore, Reload},
    service::{IdentityService, Refusal},
    token::{KubeTokenReviewer, TokenError, TokenReviewer, AUDIENCE},
};
