//! The checks of the controller's fuzz targets (`tests/fuzz/`: `validate`, `workload`,
//! `certify`), one function per target: the validating webhook's pure path, the inbound API's
//! workload parser and the identity service's checks of a Certify request, each on the fuzzer's
//! raw input. They panic only when a property is violated; errors for malformed input are the
//! expected outcome.
//!
//! Built with the `fuzz-checks` feature only; `tests/tests/fuzz_replay.rs` replays the committed
//! corpora and regressions through them on stable.

use crate::{
    identity::{self, token::check_status, CsrError, AUDIENCE},
    inbound::Workload,
};
use k8s_openapi::api::authentication::v1::TokenReviewStatus;
use serde_json::json;
use std::sync::LazyLock;
use weft_policy_k8s_api::validate::ReviewIn;

/// `validate`: the validating webhook's pure path (typed parse, `review`) never panics, and its
/// answer serializes; a denial says why.
pub fn validate(data: &[u8]) {
    let Ok(review) = serde_json::from_slice::<ReviewIn<'_>>(data) else {
        return;
    };
    if weft_injector::admission::check_review_type(&review.api_version, &review.kind).is_err() {
        return;
    }
    let Some(request) = &review.request else {
        return;
    };
    let response = weft_policy_k8s_api::validate::review(request);
    assert_eq!(response.uid, request.uid);
    assert!(
        response.allowed || !response.result.message.is_empty(),
        "a denial without a message"
    );
    serde_json::to_vec(&response.into_review()).expect("the validation answer serializes");
}

/// `workload`: the inbound API's workload parser never panics; what it accepts has a non-empty
/// namespace and pod without `:` or `/`, and reads back the same in the JSON form.
pub fn workload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Workload>() {
        Ok(workload) => {
            for part in [&workload.namespace, &workload.pod] {
                assert!(
                    !part.is_empty() && !part.contains([':', '/']),
                    "accepted {text:?} as {workload:?}"
                );
            }
            // Back in the JSON form, which the proxy sends. (The `<ns>:<pod>` form is no round
            // trip for names starting with `{`, read as JSON; no Kubernetes name does.)
            let json = json!({"ns": workload.namespace, "pod": workload.pod}).to_string();
            assert_eq!(json.parse::<Workload>().as_ref(), Ok(&workload));
        }
        Err(error) => assert_eq!(error.value, text),
    }
}

/// The identity domain of the certify check (the controller's defaults).
static MESH: LazyLock<weft_core::Mesh> =
    LazyLock::new(|| weft_core::Mesh::new("weft", "cluster.local"));

/// The fields of a Certify request and of the TokenReview's answer for its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyInput<'a> {
    pub token: &'a [u8],
    pub identity: &'a [u8],
    /// A `TokenReviewStatus` as JSON, as the API server would answer for the token.
    pub token_review_status: &'a [u8],
    pub csr: &'a [u8],
}

impl<'a> CertifyInput<'a> {
    /// Splits fuzz input: `token`, `identity` and `token_review_status` each as a big-endian u16
    /// length and that many bytes, then the CSR (DER) as the rest. Input that ends early leaves
    /// the remaining fields short or empty, so every input is a request.
    pub fn split(mut data: &'a [u8]) -> Self {
        let mut field = || {
            let len = match data {
                [high, low, rest @ ..] => {
                    data = rest;
                    usize::from(u16::from_be_bytes([*high, *low]))
                }
                _ => std::mem::take(&mut data).len(),
            };
            let (taken, rest) = data.split_at(len.min(data.len()));
            data = rest;
            taken
        };
        let token = field();
        let identity = field();
        let token_review_status = field();
        Self {
            token,
            identity,
            token_review_status,
            csr: data,
        }
    }

    /// The bytes [`CertifyInput::split`] reads back as `self` (for seeds).
    ///
    /// # Panics
    /// When a field but the CSR is longer than `u16::MAX` bytes.
    pub fn join(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [self.token, self.identity, self.token_review_status] {
            let len = u16::try_from(field.len()).expect("a certify seed field fits a u16 length");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(self.csr);
        out
    }
}

/// What the certify check concluded (for the replay test's own checks of its seeds).
#[derive(Debug, PartialEq, Eq)]
pub enum Certified {
    /// Refused before the CSR was read (empty field, token, user or identity mismatch).
    Refused,
    /// The CSR was checked against the identity and refused.
    BadCsr(CsrError),
    /// Everything passed: the identity would be signed.
    Valid,
}

/// `certify`: the identity service's checks of a Certify request, in its order, with the
/// TokenReview's status from the input: the token is UTF-8, the status names an authenticated
/// user for the proxies' audience, the user is a service account whose identity is the requested
/// one, and the CSR is valid for it. Never panics; an accepted CSR is refused for any other
/// identity.
pub fn certify(data: &[u8]) {
    certify_outcome(data);
}

/// [`certify`], returning what it concluded.
pub fn certify_outcome(data: &[u8]) -> Certified {
    let input = CertifyInput::split(data);
    if input.identity.is_empty() || input.token.is_empty() || input.csr.is_empty() {
        return Certified::Refused;
    }
    let (Ok(_token), Ok(identity)) = (
        std::str::from_utf8(input.token),
        std::str::from_utf8(input.identity),
    ) else {
        return Certified::Refused;
    };
    let status = serde_json::from_slice::<TokenReviewStatus>(input.token_review_status).ok();
    let Ok(user) = check_status(status.as_ref(), AUDIENCE) else {
        return Certified::Refused;
    };
    assert!(!user.is_empty(), "an authenticated user without a name");
    let Ok(derived) = MESH.identity_of_user(&user) else {
        return Certified::Refused;
    };
    assert!(
        derived.ends_with(".serviceaccount.identity.weft.cluster.local"),
        "user {user:?} has identity {derived:?}"
    );
    // The service checks the CSR only once the identity matched; checking it against any
    // identity lets the fuzzer reach the CSR parser without deriving a matching name first.
    let checked = identity::validate_csr(input.csr, identity);
    if checked.is_ok() {
        let other = format!("x{identity}");
        assert!(
            matches!(
                identity::validate_csr(input.csr, &other),
                Err(CsrError::SanMismatch { .. })
            ),
            "a CSR accepted for {identity:?} is not refused for {other:?}"
        );
    }
    if derived != identity {
        return Certified::Refused;
    }
    match checked {
        Ok(_) => Certified::Valid,
        Err(error) => Certified::BadCsr(error),
    }
}
