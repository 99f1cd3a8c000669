//! Certify's pure path on one core: CSR checks (parse, signature verification, key and name checks)
//! plus signing the leaf. The token review (a network call to the API server) is not included.
//!
//! `cargo run --release -p weft-policy-controller --example bench-certify [seconds]`

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
};
use std::time::{Duration, Instant, SystemTime};
use weft_policy_controller::identity::{validate_csr, Issuer, IssuerFiles, IssuerPem};

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);

    // A root, and an issuer it signed (the usual two-level setup).
    let mut root = CertificateParams::default();
    root.distinguished_name = DistinguishedName::new();
    root.distinguished_name.push(DnType::CommonName, "root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_key = KeyPair::generate()?;
    let root = rcgen::CertifiedIssuer::self_signed(root, root_key)?;
    let mut issuer = CertificateParams::default();
    issuer.distinguished_name = DistinguishedName::new();
    issuer
        .distinguished_name
        .push(DnType::CommonName, "identity.weft.cluster.local");
    issuer.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer_key = KeyPair::generate()?;
    let issuer_cert = issuer.signed_by(&issuer_key, &root)?;
    let files = IssuerFiles {
        certs: "tls.crt".into(),
        key: "tls.key".into(),
        anchors: "ca.crt".into(),
    };
    let pem = IssuerPem {
        certs: issuer_cert.pem().into_bytes(),
        key: issuer_key.serialize_pem().into_bytes(),
        anchors: root.pem().into_bytes(),
    };
    let issuer = Issuer::from_pem(&files, &pem, SystemTime::now())?;

    // Distinct proxies: 256 keys and CSRs, made ahead.
    let requests: Vec<(String, Vec<u8>)> = (0..256)
        .map(|i| {
            let name = format!("sa-{i}.ns.serviceaccount.identity.weft.cluster.local");
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, &name);
            params.subject_alt_names = vec![SanType::DnsName(name.as_str().try_into()?)];
            let csr = params.serialize_request(&key)?.der().to_vec();
            Ok((name, csr))
        })
        .collect::<anyhow::Result<_>>()?;

    let lifetime = Duration::from_secs(24 * 3600);
    let certify = |(name, csr): &(String, Vec<u8>)| -> anyhow::Result<usize> {
        let valid = validate_csr(csr, name)?;
        let issued = issuer.sign_csr(&valid, name, lifetime, SystemTime::now())?;
        Ok(issued.leaf.len())
    };

    // Warm up, then measure each call.
    for r in requests.iter().take(200) {
        certify(r)?;
    }
    let mut latencies = Vec::new();
    let mut bytes = 0;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut i = 0;
    while Instant::now() < deadline {
        let t = Instant::now();
        bytes += certify(&requests[i % requests.len()])?;
        latencies.push(t.elapsed());
        i += 1;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "certify (CSR verify + sign), 1 thread, {seconds}s: {} certs, {:.0} certs/s, p50 {:?}, p99 {:?}, max {:?} (leaf ~{} bytes)",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1],
        bytes / latencies.len().max(1),
    );
    Ok(())
}
