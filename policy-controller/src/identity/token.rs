//! Who presented a token: Kubernetes' TokenReview, behind [`TokenReviewer`] so tests can fake it.

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};

/// The audience of the projected service-account token injected pods present; a token for any
/// other audience (e.g. the API server's) is refused, so a leaked API token cannot get a
/// certificate.
pub const AUDIENCE: &str = "identity.weft.dev";

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token was not authenticated by the Kubernetes API: {0}")]
    NotAuthenticated(String),
    #[error("the token is not for audience `{expected}` (its audiences: {actual:?})")]
    WrongAudience {
        expected: &'static str,
        actual: Vec<String>,
    },
    #[error("the TokenReview names no user")]
    NoUser,
    #[error("the TokenReview could not be made: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAuthenticated(_) | Self::NoUser => "token_unauthenticated",
            Self::WrongAudience { .. } => "token_wrong_audience",
            Self::Unavailable(_) => "token_review_unavailable",
        }
    }
}

/// Authenticates a bearer token; yields the Kubernetes user name it belongs to.
pub trait TokenReviewer: Send + Sync + 'static {
    fn review(&self, token: String) -> BoxFuture<'static, Result<String, TokenError>>;
}

/// The real reviewer: creates a TokenReview for [`AUDIENCE`]. Needs RBAC `create` on
/// `tokenreviews.authentication.k8s.io`.
#[derive(Clone)]
pub struct KubeTokenReviewer {
    api: Api<TokenReview>,
}

impl std::fmt::Debug for KubeTokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTokenReviewer").finish_non_exhaustive()
    }
}

impl KubeTokenReviewer {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: Api::all(client),
        }
    }
}

impl TokenReviewer for KubeTokenReviewer {
    fn review(&self, token: String) -> BoxFuture<'static, Result<String, TokenError>> {
        let api = self.api.clone();
        Box::pin(async move {
            let review = TokenReview {
                metadata: Default::default(),
                spec: TokenReviewSpec {
                    token: Some(token),
                    audiences: Some(vec![AUDIENCE.to_string()]),
                },
                status: None,
            };
            let reviewed = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| TokenError::Unavailable(e.to_string()))?;
            check_status(reviewed.status.as_ref(), AUDIENCE)
        })
    }
}

/// The user a TokenReview's status authenticated for `audience`.
pub fn check_status(
    status: Option<&TokenReviewStatus>,
    audience: &'static str,
) -> Result<String, TokenError> {
    let Some(status) = status else {
        return Err(TokenError::NotAuthenticated(
            "the TokenReview has no status".to_string(),
        ));
    };
    if status.authenticated != Some(true) {
        let why = status
            .error
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "invalid or expired token".to_string());
        return Err(TokenError::NotAuthenticated(why));
    }
    let audiences = status.audiences.clone().unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err(TokenError::WrongAudience {
            expected: audience,
            actual: audiences,
        });
    }
    status
        .user
        .as_ref()
        .and_then(|u| u.username.clone())
        .filter(|u| !u.is_empty())
        .ok_or(TokenError::NoUser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::UserInfo;

    fn status(authenticated: bool, audiences: &[&str], user: Option<&str>) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated: Some(authenticated),
            audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            error: None,
            user: user.map(|u| UserInfo {
                username: Some(u.to_string()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn an_authenticated_token_for_the_audience_yields_its_user() {
        let s = status(
            true,
            &["other", AUDIENCE],
            Some("system:serviceaccount:ns:sa"),
        );
        assert_eq!(
            check_status(Some(&s), AUDIENCE),
            Ok("system:serviceaccount:ns:sa".to_string())
        );
    }

    #[test]
    fn refusals() {
        let mut unauthenticated = status(false, &[], None);
        unauthenticated.error = Some("token has expired".to_string());
        let cases = [
            (
                None,
                TokenError::NotAuthenticated("the TokenReview has no status".into()),
            ),
            (
                Some(status(false, &[AUDIENCE], Some("u"))),
                TokenError::NotAuthenticated("invalid or expired token".into()),
            ),
            (
                Some(unauthenticated),
                TokenError::NotAuthenticated("token has expired".into()),
            ),
            (
                Some(status(true, &["https://kubernetes.default.svc"], Some("u"))),
                TokenError::WrongAudience {
                    expected: AUDIENCE,
                    actual: vec!["https://kubernetes.default.svc".into()],
                },
            ),
            (Some(status(true, &[AUDIENCE], None)), TokenError::NoUser),
            (
                Some(status(true, &[AUDIENCE], Some(""))),
                TokenError::NoUser,
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(check_status(status.as_ref(), AUDIENCE), Err(expected));
        }
        let error = TokenError::WrongAudience {
            expected: AUDIENCE,
            actual: vec!["api".into()],
        };
        assert!(error.to_string().contains("identity.weft.dev"), "{error}");
    }
}
