//! The identity service against the real API server: tokens issued by kube-apiserver's
//! TokenRequest API, checked by Weft with a real TokenReview, and CSRs made as the proxy's
//! identity wrapper makes them (ECDSA P-256, one DNS SAN).

use crate::{block_on, Harness};
use anyhow::{ensure, Context, Result};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
};
use kube::api::{Api, PostParams};
use linkerd2_proxy_api::identity::{identity_client::IdentityClient, CertifyRequest};
use weft_e2e::resources;

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "identity::a_service_account_token_gets_a_certificate_for_its_identity",
        a_service_account_token_gets_a_certificate_for_its_identity,
    ),
    (
        "identity::tokens_and_csrs_that_do_not_match_are_refused",
        tokens_and_csrs_that_do_not_match_are_refused,
    ),
];

/// The control-plane namespace the e2e controller runs with (`--namespace`).
const CONTROL_PLANE_NS: &str = "weft-e2e-system";

fn identity_of(service_account: &str, namespace: &str) -> String {
    format!(
        "{service_account}.{namespace}.serviceaccount.identity.{CONTROL_PLANE_NS}.cluster.local"
    )
}

async fn token(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> Result<String> {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": service_account}}))?;
    if api.get_opt(service_account).await?.is_none() {
        api.create(&PostParams::default(), &sa).await?;
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_string()],
            expiration_seconds: Some(600),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let issued = api
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .context("TokenRequest")?;
    Ok(issued.status.context("TokenRequest without status")?.token)
}

/// A CSR as the proxy's identity wrapper makes it: a fresh P-256 key, one DNS SAN.
fn csr(names: &[&str]) -> Result<Vec<u8>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key)?.der().to_vec())
}

async fn certify(
    h: &Harness,
    token: &str,
    identity: &str,
    csr: Vec<u8>,
) -> Result<std::result::Result<linkerd2_proxy_api::identity::CertifyResponse, tonic::Status>> {
    let mut client = IdentityClient::connect(format!("http://{}", h.controller.grpc_addr)).await?;
    Ok(client
        .certify(CertifyRequest {
            identity: identity.to_string(),
            token: token.as_bytes().to_vec(),
            certificate_signing_request: csr,
        })
        .await
        .map(tonic::Response::into_inner))
}

fn a_service_account_token_gets_a_certificate_for_its_identity(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "identity", &[], &[]).await?;
        let token = token(&client, &ns, "web", "identity.weft.dev").await?;
        let identity = identity_of("web", &ns);
        let response = certify(h, &token, &identity, csr(&[&identity])?)
            .await?
            .map_err(|status| anyhow::anyhow!("Certify refused a valid request: {status:?}"))?;
        let (_, leaf) = x509_parser::parse_x509_certificate(&response.leaf_certificate)
            .context("the leaf is not a DER certificate")?;
        let names: Vec<String> = leaf
            .subject_alternative_name()?
            .context("the leaf has no SAN")?
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        ensure!(
            names == [format!("DNSName({identity})")],
            "the leaf must name exactly {identity}, got {names:?}"
        );
        let valid_until = response.valid_until.context("no valid_until")?;
        ensure!(
            valid_until.seconds == leaf.validity().not_after.timestamp(),
            "valid_until {valid_until:?} differs from the leaf's notAfter"
        );
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}

fn tokens_and_csrs_that_do_not_match_are_refused(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "identity-refused", &[], &[]).await?;
        let web = identity_of("web", &ns);
        let web_token = token(&client, &ns, "web", "identity.weft.dev").await?;
        let cases: Vec<(&str, String, String, Vec<u8>)> = vec![
            (
                "a token for another audience",
                token(&client, &ns, "web", "api").await?,
                web.clone(),
                csr(&[&web])?,
            ),
            (
                "another service account's identity",
                web_token.clone(),
                identity_of("db", &ns),
                csr(&[&identity_of("db", &ns)])?,
            ),
            (
                "a CSR for another name",
                web_token.clone(),
                web.clone(),
                csr(&[&identity_of("db", &ns)])?,
            ),
            (
                "a CSR with an extra SAN",
                web_token.clone(),
                web.clone(),
                csr(&[&web, "example.com"])?,
            ),
            (
                "a token that is not one",
                "not-a-token".to_string(),
                web.clone(),
                csr(&[&web])?,
            ),
        ];
        for (what, token, identity, csr) in cases {
            match certify(h, &token, &identity, csr).await? {
                Ok(_) => anyhow::bail!("Certify issued a certificate for {what}"),
                Err(status) => ensure!(
                    status.code() != tonic::Code::Ok && !status.message().is_empty(),
                    "{what}: refusal without a message: {status:?}"
                ),
            }
        }
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}
