//! The identity service (`io.linkerd.proxy.identity.Identity/Certify`): proxies trade their
//! service-account token and a CSR for a short-lived certificate naming their identity.
//!
//! Pure pieces: CSR checks ([`csr`]), the issuer and signing ([`issuer`], [`key`]); identity names
//! are [`weft_core::Mesh`]'s. Connecting pieces: reloading the issuer files ([`reload`]), the
//! TokenReview ([`token`]), the gRPC service ([`service`]) and its metrics ([`metrics`]).

pub mod csr;
pub mod issuer;
mod key;
pub mod metrics;
pub mod reload;
pub mod service;
#[cfg(test)]
pub(crate) mod test_pki;
pub mod token;

pub use self::{
    csr::{validate as validate_csr, CsrError, ValidCsr},
    issuer::{Issued, Issuer, IssuerError, IssuerFiles, IssuerPem, SignError},
    metrics::IdentityMetrics,
    reload::{IssuerStore, Reload},
    service::{IdentityService, Refusal},
    token::{KubeTokenReviewer, TokenError, TokenReviewer, AUDIENCE},
};
