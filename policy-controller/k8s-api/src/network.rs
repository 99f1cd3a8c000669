//! Client networks of a ServerAuthorization: a CIDR minus optional excepted CIDRs.

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, net::IpAddr, str::FromStr};

use crate::FieldError;

/// An IP network in CIDR notation. A bare address (`10.1.2.3`) is accepted as a single-host
/// network (`/32` or `/128`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Cidr(IpNet::from(addr)));
        }
        Err(format!(
            "{s:?} is not a CIDR (e.g. \"10.0.0.0/8\" or \"fd00::/8\") or an IP address"
        ))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> String {
        "Cidr".to_string()
    }

    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(gen)
    }
}

/// Clients from `cidr`, except those in any of `except`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct Network {
    pub cidr: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<Vec<Cidr>>,
}

impl Network {
    /// Every `except` must lie inside `cidr` (same address family, contained).
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        for (i, except) in self.except.iter().flatten().enumerate() {
            if !self.cidr.0.contains(&except.0) {
                return Err(FieldError::new(
                    format!("{field}.except[{i}]"),
                    format!("{except} is not inside cidr {}", self.cidr),
                ));
            }
        }
        Ok(())
    }

    /// Whether `addr` is in this network and not in an exception.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.cidr.0.contains(&addr) && !self.except.iter().flatten().any(|e| e.0.contains(&addr))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_cidrs_and_addresses() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "10.1.2.3".parse::<Cidr>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().to_string(), "fd00::/8");
        let err = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(err.starts_with("\"10.0.0.0/33\" is not a CIDR"), "{err}");
    }

    #[test]
    fn except_must_be_inside() {
        let ok: Network =
            serde_json::from_value(json!({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}))
                .unwrap();
        ok.validate("spec.client.networks[0]").unwrap();
        assert!(ok.contains("10.2.0.1".parse().unwrap()));
        assert!(!ok.contains("10.1.0.1".parse().unwrap()));
        assert!(!ok.contains("192.168.0.1".parse().unwrap()));

        let bad: Network = serde_json::from_value(
            json!({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "192.168.0.0/16"]}),
        )
        .unwrap();
        assert_eq!(
            bad.validate("spec.client.networks[0]")
                .unwrap_err()
                .to_string(),
            "spec.client.networks[0].except[1]: 192.168.0.0/16 is not inside cidr 10.0.0.0/8"
        );
        let family: Network =
            serde_json::from_value(json!({"cidr": "10.0.0.0/8", "except": ["fd00::/8"]})).unwrap();
        assert!(family.validate("n").is_err());
    }
}
