//! Parsers for the values a proxy setting may take, shared by command-line flags and `config.weft.dev/`
//! annotations. Each parser returns an [`InvalidValue`] describing the accepted form; the caller prefixes it
//! with the flag or annotation that held the value.

use std::fmt;
use weft_core::DefaultPolicy;

/// Why one value was refused: the value itself and a description of the accepted form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidValue {
    pub value: String,
    pub problem: String,
}

impl InvalidValue {
    pub(crate) fn new(value: &str, problem: impl Into<String>) -> Self {
        Self {
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}

/// Longest value quoted in a message; longer values are cut so messages and warnings stay short.
const MAX_QUOTED: usize = 64;

/// `value` in double quotes, escaped, cut after [`MAX_QUOTED`] characters.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", quoted(&self.value), self.problem)
    }
}

pub use weft_core::{ports::parse_port, PortList};

/// Parses `25,8000-8010` by the one rule of [`weft_core::ports`] (blanks around items allowed;
/// empty items skipped; any other malformed item refuses the value).
pub fn parse_port_list(value: &str) -> Result<PortList, InvalidValue> {
    PortList::parse(value).map_err(|e| InvalidValue::new(value, e.problem))
}

/// A validated Kubernetes resource quantity, kept exactly as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity(String);

impl Quantity {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const QUANTITY_FORM: &str =
    "is not a Kubernetes quantity (e.g. \"100m\", \"0.5\", \"1\", \"20Mi\", \"1Gi\", \"1e3\")";

/// Validates the Kubernetes quantity grammar: a non-negative decimal number followed by nothing, a decimal SI
/// suffix (`m`, `k`, `M`, `G`, `T`, `P`, `E`), a binary SI suffix (`Ki` .. `Ei`) or an exponent (`e3`, `E-2`).
/// Negative values are refused: a proxy resource cannot be negative.
pub fn parse_quantity(value: &str) -> Result<Quantity, InvalidValue> {
    if value.starts_with('-') {
        return Err(InvalidValue::new(
            value,
            "is negative; a resource quantity must be 0 or more",
        ));
    }
    let body = value.strip_prefix('+').unwrap_or(value);
    let number_len = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = body.split_at(number_len);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    let dots = number.bytes().filter(|b| *b == b'.').count();
    let number_ok = digits > 0 && dots <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || is_exponent(suffix);
    if number_ok && suffix_ok {
        Ok(Quantity(value.to_string()))
    } else {
        Err(InvalidValue::new(value, QUANTITY_FORM))
    }
}

fn is_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

/// Approximate numeric value of a validated quantity, used only to compare a request with its limit.
pub fn quantity_value(q: &Quantity) -> f64 {
    let body = q.0.strip_prefix('+').unwrap_or(&q.0);
    let number_len = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = body.split_at(number_len);
    let base: f64 = number.parse().unwrap_or(0.0);
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exp => {
            let e: i32 = exp[1..].parse().unwrap_or(0);
            10.0_f64.powi(e)
        }
    };
    base * factor
}

const UID_FORM: &str =
    "is not a valid proxy uid (accepted: an integer from 1 to 2147483647; 0 (root) is refused)";

/// A Linux uid for the proxy: 1..=2^31-1. Root is refused because the iptables rules exempt the proxy's uid,
/// and exempting root would let every root process bypass the proxy.
pub fn parse_uid(value: &str) -> Result<u32, InvalidValue> {
    let uid: u32 = value
        .trim()
        .parse()
        .map_err(|_| InvalidValue::new(value, UID_FORM))?;
    if uid == 0 || uid > i32::MAX as u32 {
        return Err(InvalidValue::new(value, UID_FORM));
    }
    Ok(uid)
}

/// `true` or `false`, exactly.
pub fn parse_bool(value: &str) -> Result<bool, InvalidValue> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(InvalidValue::new(
            value,
            "is not a boolean (accepted: \"true\", \"false\")",
        )),
    }
}

/// A container image repository without a tag or digest, e.g. `ghcr.io/weft-dev/proxy` or `registry:5000/proxy`.
pub fn parse_image(value: &str) -> Result<String, InvalidValue> {
    const FORM: &str = "is not an image name without tag (e.g. \"ghcr.io/weft-dev/proxy\"; the tag comes from proxy-version)";
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidValue::new(value, FORM));
    }
    let last = value.rsplit('/').next().unwrap_or(value);
    if last.is_empty() || last.contains(':') || value.contains('@') {
        return Err(InvalidValue::new(value, FORM));
    }
    Ok(value.to_string())
}

/// A full image reference (repository with optional tag or digest), e.g. `ghcr.io/weft-dev/proxy-init:v0.1.0`.
pub fn parse_image_reference(value: &str) -> Result<String, InvalidValue> {
    if value.is_empty()
        || value.ends_with(['/', ':', '@'])
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(InvalidValue::new(
            value,
            "is not an image reference (e.g. \"ghcr.io/weft-dev/proxy-init:v0.1.0\")",
        ));
    }
    Ok(value.to_string())
}

/// An image tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn parse_tag(value: &str) -> Result<String, InvalidValue> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(['.', '-'])
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(InvalidValue::new(
            value,
            "is not an image tag (accepted: 1-128 of letters, digits, '_', '.', '-', e.g. \"v0.1.0\")",
        ))
    }
}

/// A proxy log filter such as `warn,weft=info`: non-empty, no blanks or control characters.
pub fn parse_log_level(value: &str) -> Result<String, InvalidValue> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidValue::new(
            value,
            "is not a log filter (accepted: comma-separated levels or target=level, e.g. \"warn,weft=info\")",
        ));
    }
    Ok(value.to_string())
}

/// `host:port` with a port 1-65535, e.g. `weft-policy.weft.svc.cluster.local:8090` or `[::1]:8090`.
pub fn parse_host_port(value: &str) -> Result<String, InvalidValue> {
    const FORM: &str = "is not host:port (e.g. \"weft-policy.weft.svc.cluster.local:8090\")";
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| InvalidValue::new(value, FORM))?;
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    if !host_ok || parse_port(port).is_none() {
        return Err(InvalidValue::new(value, FORM));
    }
    Ok(value.to_string())
}

/// A Kubernetes namespace name (RFC 1123 label).
pub fn parse_namespace(value: &str) -> Result<String, InvalidValue> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(InvalidValue::new(
            value,
            "is not a namespace name (accepted: 1-63 lowercase letters, digits and '-', e.g. \"weft\")",
        ))
    }
}

/// A DNS name such as a trust domain (`cluster.local`) or a control-plane server name: dot-separated labels of
/// 1-63 letters, digits and '-' (not at either end), 253 characters at most, no trailing dot.
pub fn parse_dns_name(value: &str) -> Result<String, InvalidValue> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !value.is_empty() && value.len() <= 253 && value.split('.').all(label_ok) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(InvalidValue::new(
            value,
            "is not a DNS name (accepted: dot-separated labels of letters, digits and '-', e.g. \"cluster.local\")",
        ))
    }
}

/// The proxy's log format: `plain` or `json`.
pub fn parse_log_format(value: &str) -> Result<String, InvalidValue> {
    match value {
        "plain" | "json" => Ok(value.to_string()),
        _ => Err(InvalidValue::new(
            value,
            "is not a log format (accepted: \"plain\", \"json\")",
        )),
    }
}

/// One of the default inbound policy names.
pub fn parse_inbound_policy(value: &str) -> Result<DefaultPolicy, InvalidValue> {
    value.parse().map_err(|_| {
            InvalidValue::new(
                value,
                "is not a default inbound policy (accepted: \"all-unauthenticated\", \"all-authenticated\", \"cluster-unauthenticated\", \"cluster-authenticated\", \"deny\")",
            )
        })
}

/// Comma-separated CIDRs such as `10.0.0.0/8,fd00::/8`; blanks around items are allowed.
pub fn parse_networks(value: &str) -> Result<Vec<ipnet::IpNet>, InvalidValue> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse().map_err(|_| {
                InvalidValue::new(
                    value,
                    format!("has {n:?}, which is not a network (accepted: comma-separated CIDRs, e.g. \"10.0.0.0/8,fd00::/8\")"),
                )
            })
        })
        .collect()
}

/// PEM text holding one or more X.509 certificates: the roots a proxy trusts for mesh identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchors(std::sync::Arc<str>);

impl TrustAnchors {
    /// The PEM text, without leading blank space, ending in one newline.
    pub fn pem(&self) -> &str {
        &self.0
    }
}

/// Checks that `pem` holds at least one PEM `CERTIFICATE` block, each an X.509 certificate, and nothing else.
/// `source` names where the text came from (the value quoted in the error).
pub fn parse_trust_anchors(source: &str, pem: &str) -> Result<TrustAnchors, InvalidValue> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    const FORM: &str = "(accepted: one or more PEM blocks \"-----BEGIN CERTIFICATE-----\" holding X.509 certificates)";
    let mut count = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block
            .map_err(|e| InvalidValue::new(source, format!("is not valid PEM ({e}) {FORM}")))?;
        if block.label != "CERTIFICATE" {
            return Err(InvalidValue::new(
                source,
                format!("holds a {:?} PEM block {FORM}", block.label),
            ));
        }
        X509Certificate::from_der(&block.contents).map_err(|e| {
            InvalidValue::new(
                source,
                format!(
                    "holds certificate {} that does not parse ({e}) {FORM}",
                    count + 1
                ),
            )
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(InvalidValue::new(
            source,
            format!("holds no PEM certificate {FORM}"),
        ));
    }
    Ok(TrustAnchors(format!("{}\n", pem.trim()).into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn port_lists() {
        let list = parse_port_list("25, 8000-8010,443").unwrap();
        assert_eq!(list.to_string(), "25,8000-8010,443");
        assert!(list.contains(8005) && list.contains(25) && !list.contains(26));
        assert!(parse_port_list("").unwrap().is_empty());
        assert!(parse_port_list("  ").unwrap().is_empty());
        assert_eq!(parse_port_list("25,,26,").unwrap().to_string(), "25,26");
        for bad in ["0", "65536", "a", "1-", "-5", "25,,x", "10-5", "1.5", "+3"] {
            let err = parse_port_list(bad).unwrap_err();
            assert_eq!(err.value, bad);
        }
        assert!(parse_port_list("10-5")
            .unwrap_err()
            .problem
            .contains("lo <= hi"));
        assert_eq!(parse_port_list("65535").unwrap().ranges()[0].hi, 65535);
    }

    #[test]
    fn quantities() {
        for ok in [
            "100m", "0.5", "1", "20Mi", "1Gi", "1e3", "1E-2", ".5", "5.", "+1", "0", "2Ei", "3k",
        ] {
            assert!(parse_quantity(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "lots", "", "m", "1.2.3", "100mi", "1KB", "1 Gi", "1e", "Gi", "1i", "-1", "1e3.5",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_quantity("lots")
            .unwrap_err()
            .to_string()
            .contains("is not a Kubernetes quantity"));
        assert_eq!(quantity_value(&parse_quantity("250m").unwrap()), 0.25);
        assert_eq!(quantity_value(&parse_quantity("1Ki").unwrap()), 1024.0);
        assert_eq!(quantity_value(&parse_quantity("2e3").unwrap()), 2000.0);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let message = parse_quantity(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
        assert!(
            message.starts_with(&format!("\"{}\"...", "x".repeat(64))),
            "{message}"
        );
    }

    #[test]
    fn uids() {
        assert_eq!(parse_uid("2102").unwrap(), 2102);
        assert_eq!(parse_uid("2147483647").unwrap(), 2147483647);
        for bad in ["0", "-1", "2147483648", "root", ""] {
            assert!(parse_uid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_tags_and_addresses() {
        assert!(parse_image("ghcr.io/weft-dev/proxy").is_ok());
        assert!(parse_image("registry:5000/proxy").is_ok());
        assert!(parse_image("ghcr.io/weft-dev/proxy:v1").is_err());
        assert!(parse_image("proxy@sha256:abc").is_err());
        assert!(parse_image("has space").is_err());
        assert!(parse_tag("v0.1.0").is_ok());
        assert!(parse_tag("-x").is_err());
        assert!(parse_tag("a:b").is_err());
        assert!(parse_host_port("weft-policy.weft.svc.cluster.local:8090").is_ok());
        assert!(parse_host_port("[::1]:8090").is_ok());
        assert!(parse_host_port("nohost").is_err());
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_namespace("weft").is_ok());
        assert!(parse_namespace("Weft").is_err());
        assert!(parse_bool("true").unwrap());
        assert!(parse_bool("yes").is_err());
        assert!(parse_log_level("warn,weft=info").is_ok());
        assert!(parse_log_level("warn weft").is_err());
        assert_eq!(parse_dns_name("Cluster.Local").unwrap(), "cluster.local");
        for bad in ["", ".", "a..b", "a.", "-a", "a-", "a_b", "a b"] {
            assert!(parse_dns_name(bad).is_err(), "{bad}");
        }
        assert!(parse_log_format("json").is_ok() && parse_log_format("JSON").is_err());
    }

    #[test]
    fn inbound_policies_and_networks() {
        for p in DefaultPolicy::ALL {
            assert_eq!(parse_inbound_policy(p.as_str()).unwrap(), p);
        }
        let err = parse_inbound_policy("allow").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "\"allow\" is not a default inbound policy (accepted: \"all-unauthenticated\""
            ),
            "{err}"
        );
        let nets = parse_networks(" 10.0.0.0/8, fd00::/8 ,").unwrap();
        assert_eq!(nets.len(), 2);
        assert!(parse_networks("").unwrap().is_empty());
        let err = parse_networks("10.0.0.0/8,10.0.0.0").unwrap_err();
        assert!(
            err.problem.contains("\"10.0.0.0\", which is not a network"),
            "{err}"
        );
    }
}
