#![allow(clippy::unwrap_used)]
use super::*;
use crate::identity::{
    csr::tests::proxy_csr,
    test_pki::{verify_leaf, TestPki, DAY},
    token::AUDIENCE,
};
use futures::future::BoxFuture;
use std::collections::HashMap;

pub(crate) const ID: &str = "web.emojivoto.serviceaccount.identity.weft.cluster.local";
pub(crate) const GOOD_TOKEN: &str = "good-token";

/// Answers from a table: token → user (or error); any other token is not authenticated.
pub(crate) struct FakeReviewer(pub HashMap<String, Result<String, TokenError>>);

impl TokenReviewer for FakeReviewer {
    fn review(&self, token: String) -> BoxFuture<'static, Result<String, TokenError>> {
        let answer = self.0.get(&token).cloned().unwrap_or_else(|| {
            Err(TokenError::NotAuthenticated(
                "invalid bearer token".to_string(),
            ))
        });
        Box::pin(async move { answer })
    }
}

pub(crate) fn fake_reviewer() -> Arc<FakeReviewer> {
    let mut table = HashMap::new();
    table.insert(
        GOOD_TOKEN.to_string(),
        Ok("system:serviceaccount:emojivoto:web".to_string()),
    );
    table.insert(
        "other-sa".to_string(),
        Ok("system:serviceaccount:emojivoto:voting".to_string()),
    );
    table.insert(
        "api-token".to_string(),
        Err(TokenError::WrongAudience {
            expected: AUDIENCE,
            actual: vec!["https://kubernetes.default.svc.cluster.local".to_string()],
        }),
    );
    table.insert("admin".to_string(), Ok("kubernetes-admin".to_string()));
    table.insert(
        "api-down".to_string(),
        Err(TokenError::Unavailable("connection refused".to_string())),
    );
    Arc::new(FakeReviewer(table))
}

pub(crate) struct Fixture {
    pub pki: TestPki,
    pub service: IdentityService,
    pub metrics: IdentityMetrics,
    pub store: Arc<IssuerStore>,
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(365 * DAY);
    let files = pki.write(dir.path());
    let metrics = IdentityMetrics::default();
    let store = Arc::new(IssuerStore::load(files, metrics.clone(), SystemTime::now()).unwrap());
    let service = IdentityService::new(
        weft_core::Mesh::new("weft", "cluster.local"),
        store.clone(),
        fake_reviewer(),
        DAY,
        metrics.clone(),
    );
    Fixture {
        pki,
        service,
        metrics,
        store,
        dir,
    }
}

pub(crate) fn request(identity: &str, token: &str, csr: Vec<u8>) -> CertifyRequest {
    CertifyRequest {
        identity: identity.to_string(),
        token: token.as_bytes().to_vec(),
        certificate_signing_request: csr,
    }
}

#[tokio::test]
async fn a_good_request_gets_a_certificate_for_its_identity() {
    let f = fixture();
    let (_, csr) = proxy_csr(ID);
    let response = f
        .service
        .certify(Request::new(request(ID, GOOD_TOKEN, csr)))
        .await
        .unwrap()
        .into_inner();
    let intermediates: Vec<_> = response
        .intermediate_certificates
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect();
    let now = SystemTime::now();
    verify_leaf(
        &response.leaf_certificate.into(),
        &intermediates,
        &f.pki.root_der(),
        ID,
        now,
    )
    .unwrap();
    let valid_until = SystemTime::try_from(response.valid_until.unwrap()).unwrap();
    assert!(valid_until > now + DAY - Duration::from_secs(60) && valid_until <= now + DAY);
    assert_eq!(f.metrics.issued_count(), 1);
}

#[tokio::test]
async fn refusals_have_the_right_code_and_say_why() {
    let f = fixture();
    let (_, csr) = proxy_csr(ID);
    let other = "voting.emojivoto.serviceaccount.identity.weft.cluster.local";
    let (_, other_csr) = proxy_csr(other);
    let cases = [
        (request("", GOOD_TOKEN, csr.clone()), Code::InvalidArgument, "`identity` is empty"),
        (request(ID, "", csr.clone()), Code::InvalidArgument, "`token` is empty"),
        (request(ID, GOOD_TOKEN, vec![]), Code::InvalidArgument, "`certificate_signing_request` is empty"),
        (request(ID, "stolen", csr.clone()), Code::Unauthenticated, "not authenticated by the Kubernetes API: invalid bearer token"),
        (request(ID, "api-token", csr.clone()), Code::Unauthenticated, "not for audience `identity.weft.dev`"),
        (request(ID, "admin", csr.clone()), Code::PermissionDenied, "`kubernetes-admin`, not to a service account"),
        (request(ID, "other-sa", csr.clone()), Code::PermissionDenied, "whose identity is `voting.emojivoto.serviceaccount.identity.weft.cluster.local`, not the requested `web."),
        (request(ID, "api-down", csr.clone()), Code::Unavailable, "TokenReview could not be made"),
        (request(ID, GOOD_TOKEN, other_csr), Code::InvalidArgument, "DNS SAN `voting.emojivoto"),
        (request(ID, GOOD_TOKEN, b"garbage".to_vec()), Code::InvalidArgument, "not a DER-encoded PKCS#10"),
    ];
    for (req, code, message) in cases {
        let status = f.service.certify(Request::new(req)).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(message),
            "expected {message:?} in {:?}",
            status.message()
        );
        assert!(
            !status.message().contains(GOOD_TOKEN),
            "the token is never echoed"
        );
    }
    assert_eq!(f.metrics.refusals_for("token_unauthenticated"), 1);
    assert_eq!(f.metrics.refusals_for("identity_mismatch"), 1);
    assert_eq!(f.metrics.refusals_for("csr_name_mismatch"), 1);
}
