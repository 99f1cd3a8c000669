//! `spec.port` of a Server: a port number or the name of a container port.

use schemars::{
    gen::SchemaGenerator,
    schema::{Schema, SchemaObject},
    JsonSchema,
};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, num::NonZeroU16};

/// The accepted forms, quoted in every error message about a port.
pub const PORT_FORMS: &str = "a port number (1-65535) or a port name (IANA_SVC_NAME)";

/// A Server's port: either a number or a container port name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    Number(NonZeroU16),
    Name(String),
}

impl Port {
    /// Parses a port written as a number or a name, e.g. from a test or a CLI.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Ok(number) = value.parse::<i64>() {
            return Self::from_number(number);
        }
        Self::from_name(value)
    }

    fn from_number(number: i64) -> Result<Self, String> {
        u16::try_from(number)
            .ok()
            .and_then(NonZeroU16::new)
            .map(Port::Number)
            .ok_or_else(|| format!("{number} is not {PORT_FORMS}"))
    }

    fn from_name(name: &str) -> Result<Self, String> {
        match invalid_port_name(name) {
            None => Ok(Port::Name(name.to_string())),
            Some(why) => Err(format!("{name:?} is not {PORT_FORMS}: {why}")),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => n.fmt(f),
            Port::Name(name) => name.fmt(f),
        }
    }
}

/// Checks a name against Kubernetes' IANA_SVC_NAME rules (RFC 6335): at most 15 characters of
/// lowercase letters, digits and '-', with at least one letter, no '-' at either end and no "--".
/// Returns why the name is invalid, or `None` when it is valid.
pub fn invalid_port_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 15 {
        return Some("it is longer than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only lowercase letters, digits and '-' are allowed");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Some("it must contain at least one letter");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it must not start or end with '-'");
    }
    if name.contains("--") {
        return Some("it must not contain \"--\"");
    }
    None
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Number(n) => serializer.serialize_u16(n.get()),
            Port::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl de::Visitor<'_> for PortVisitor {
            type Value = Port;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PORT_FORMS)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                Port::from_number(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                Port::from_number(i64::try_from(v).unwrap_or(i64::MAX)).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Port, E> {
                Err(E::custom(format!("{v} is not {PORT_FORMS}")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Port::from_name(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(PortVisitor)
    }
}

impl JsonSchema for Port {
    fn schema_name() -> String {
        "Port".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Deliberately loose (int-or-string): the validating webhook checks ranges and names so
        // that users get our message naming the field and the accepted forms.
        // An int-or-string schema carries no `type` in a structural schema.
        let mut schema = SchemaObject::default();
        schema
            .extensions
            .insert("x-kubernetes-int-or-string".to_string(), true.into());
        schema.metadata().description = Some(format!("The port: {PORT_FORMS}."));
        Schema::Object(schema)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_numbers_and_names() {
        assert_eq!(
            serde_json::from_value::<Port>(8080.into()).unwrap(),
            Port::Number(NonZeroU16::new(8080).unwrap())
        );
        assert_eq!(
            serde_json::from_value::<Port>("http-admin".into()).unwrap(),
            Port::Name("http-admin".into())
        );
    }

    #[test]
    fn rejects_out_of_range_numbers() {
        for bad in [0i64, -1, 65536, 70000] {
            let err = serde_json::from_value::<Port>(bad.into()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{bad} is not a port number (1-65535) or a port name (IANA_SVC_NAME)")
            );
        }
    }

    #[test]
    fn port_name_rules() {
        for good in ["http", "a", "grpc-9090", "abcdefghijklmno"] {
            assert_eq!(invalid_port_name(good), None, "{good}");
        }
        for bad in [
            "",
            "HTTP",
            "9090",
            "-http",
            "http-",
            "ht--tp",
            "abcdefghijklmnop",
            "h_t",
        ] {
            assert!(invalid_port_name(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for port in [Port::parse("443").unwrap(), Port::parse("admin").unwrap()] {
            let json = serde_json::to_value(&port).unwrap();
            assert_eq!(serde_json::from_value::<Port>(json).unwrap(), port);
        }
    }
}
