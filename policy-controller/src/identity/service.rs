//! `io.linkerd.proxy.identity.Identity/Certify`: a proxy presents its service-account token, the
//! identity it wants and a CSR; it gets a short-lived certificate for that identity.
//!
//! The request's fields are checked first, then the token (TokenReview), then that the token's
//! service account has the requested identity, then the CSR; only then is anything signed.

use super::{
    csr::{self, CsrError},
    issuer::{Issued, SignError},
    metrics::IdentityMetrics,
    reload::IssuerStore,
    token::{TokenError, TokenReviewer},
};
use linkerd2_proxy_api::identity::{
    identity_server::{Identity, IdentityServer},
    CertifyRequest, CertifyResponse,
};
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tonic::{Code, Request, Response, Status};
use weft_core::{Mesh, NameError};

/// Why a Certify request was refused. The message is what the proxy sees in the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the request's `identity` is empty")]
    NoIdentity,
    #[error("the request's `token` is empty (expected the pod's projected service-account token)")]
    NoToken,
    #[error("the request's `token` is not UTF-8 (expected a JWT)")]
    TokenNotUtf8,
    #[error("the request's `certificate_signing_request` is empty (expected a DER PKCS#10 CSR)")]
    NoCsr,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    User(#[from] NameError),
    #[error("the token belongs to `{user}`, whose identity is `{derived}`, not the requested `{requested}`")]
    IdentityMismatch {
        user: String,
        derived: String,
        requested: String,
    },
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("the certificate could not be signed: {0}")]
    Sign(#[from] SignError),
}

impl Refusal {
    pub fn code(&self) -> Code {
        match self {
            Self::NoIdentity | Self::NoToken | Self::TokenNotUtf8 | Self::NoCsr | Self::Csr(_) => {
                Code::InvalidArgument
            }
            Self::Token(TokenError::Unavailable(_)) => Code::Unavailable,
            Self::Token(_) => Code::Unauthenticated,
            Self::User(_) | Self::IdentityMismatch { .. } => Code::PermissionDenied,
            Self::Sign(_) => Code::Internal,
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoIdentity => "no_identity",
            Self::NoToken => "no_token",
            Self::TokenNotUtf8 => "token_not_utf8",
            Self::NoCsr => "no_csr",
            Self::Token(e) => e.reason(),
            Self::User(_) => "not_a_service_account",
            Self::IdentityMismatch { .. } => "identity_mismatch",
            Self::Csr(e) => e.reason(),
            Self::Sign(_) => "sign_failed",
        }
    }
}

/// The Identity gRPC service.
#[derive(Clone)]
pub struct IdentityService {
    inner: Arc<Inner>,
}

struct Inner {
    domain: Mesh,
    issuer: Arc<IssuerStore>,
    reviewer: Arc<dyn TokenReviewer>,
    lifetime: Duration,
    metrics: IdentityMetrics,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("domain", &self.inner.domain)
            .field("lifetime", &self.inner.lifetime)
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// Certificates are valid for `lifetime` (never past the issuer's expiry).
    pub fn new(
        domain: Mesh,
        issuer: Arc<IssuerStore>,
        reviewer: Arc<dyn TokenReviewer>,
        lifetime: Duration,
        metrics: IdentityMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                domain,
                issuer,
                reviewer,
                lifetime,
                metrics,
            }),
        }
    }

    /// The tonic service, to add to the controller's [`tonic::service::Routes`].
    pub fn into_server(self) -> IdentityServer<Self> {
        IdentityServer::new(self)
    }

    /// Certifies a request (the whole check-then-sign path).
    pub async fn certify_request(&self, req: CertifyRequest) -> Result<Issued, Refusal> {
        let CertifyRequest {
            identity,
            token,
            certificate_signing_request: csr,
        } = req;
        if identity.is_empty() {
            return Err(Refusal::NoIdentity);
        }
        if token.is_empty() {
            return Err(Refusal::NoToken);
        }
        if csr.is_empty() {
            return Err(Refusal::NoCsr);
        }
        let token = String::from_utf8(token).map_err(|_| Refusal::TokenNotUtf8)?;
        let user = self.inner.reviewer.review(token).await?;
        let derived = self.inner.domain.identity_of_user(&user)?;
        if derived != identity {
            return Err(Refusal::IdentityMismatch {
                user,
                derived,
                requested: identity,
            });
        }
        let csr = csr::validate(&csr, &identity)?;
        let issuer = self.inner.issuer.current();
        Ok(issuer.sign_csr(&csr, &identity, self.inner.lifetime, SystemTime::now())?)
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let request = request.into_inner();
        let identity = request.identity.clone();
        match self.certify_request(request).await {
            Ok(issued) => {
                self.inner.metrics.issued();
                tracing::debug!(%identity, "Issued a certificate");
                Ok(Response::new(CertifyResponse {
                    leaf_certificate: issued.leaf.to_vec(),
                    intermediate_certificates: issued
                        .intermediates
                        .iter()
                        .map(|c| c.to_vec())
                        .collect(),
                    valid_until: Some(issued.valid_until.into()),
                }))
            }
            Err(refusal) => {
                let reason = refusal.reason();
                self.inner.metrics.refused(reason);
                if refusal.code() == Code::Internal {
                    tracing::error!(%identity, reason, error = %refusal, "Certify failed");
                } else {
                    tracing::info!(%identity, reason, error = %refusal, "Certify refused");
                }
                Err(Status::new(refusal.code(), refusal.to_string()))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
