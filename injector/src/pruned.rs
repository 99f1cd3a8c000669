//! Parses JSON into a [`serde_json::Value`] that keeps only the fields a [`Shape`] lists, skipping the rest
//! while parsing (nothing is allocated for skipped fields). The webhook uses it so that a pod's env vars,
//! managed fields, volume sources and everything else injection never reads cost only the scan over their
//! bytes, not a tree of values that is built and then dropped.
//!
//! Kept parts are exactly what the JSON says (same types, same key order); a value whose type does not match
//! its shape (e.g. `containers` given as an object) is kept whole, so checks such as "is this an array" see
//! what the full document would show.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::{cell::Cell, fmt};

/// Which parts of a JSON value to keep.
#[derive(Debug)]
pub(crate) enum Shape {
    /// The whole value.
    All,
    /// For an object: only these keys, each with its own shape.
    Fields(&'static [(&'static str, Shape)]),
    /// For an array: every element, with this shape.
    Each(&'static Shape),
}

/// How many values one pruned parse may keep. Every kept value (scalar, array or object, and so
/// every array element and object entry) takes one; parsing fails once none is left, so what a
/// document keeps is bounded however its bytes are spent.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<usize>,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            left: Cell::new(limit),
            limit,
        }
    }

    fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "more than {} values in the fields kept",
                self.limit
            ))),
        }
    }
}

/// A seed that parses one value keeping what its shape lists, within a [`Budget`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pruned<'b>(pub &'static Shape, pub &'b Budget);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(PrunedVisitor(self.0, self.1))
    }
}

struct PrunedVisitor<'b>(&'static Shape, &'b Budget);

impl<'de> Visitor<'de> for PrunedVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.1.take()?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Pruned(self.0, self.1).deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.1.take()?;
        let element = match self.0 {
            Shape::Each(element) => element,
            _ => &Shape::All,
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Pruned(element, self.1))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.1.take()?;
        let mut out = Map::new();
        let Shape::Fields(fields) = self.0 else {
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(Pruned(&Shape::All, self.1))?;
                out.insert(key, value);
            }
            return Ok(Value::Object(out));
        };
        while let Some(index) = map.next_key_seed(FieldIndex(fields))? {
            match index {
                Some(i) => {
                    let (key, shape) = &fields[i];
                    let value = map.next_value_seed(Pruned(shape, self.1))?;
                    out.insert((*key).to_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Parses an object key into the index of the listed field it names, without allocating.
struct FieldIndex(&'static [(&'static str, Shape)]);

impl<'de> DeserializeSeed<'de> for FieldIndex {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(name, _)| *name == key))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    static PORT: Shape = Shape::Fields(&[("containerPort", Shape::All)]);
    static CONTAINER: Shape = Shape::Fields(&[("name", Shape::All), ("ports", Shape::Each(&PORT))]);
    static POD: Shape = Shape::Fields(&[
        ("metadata", Shape::All),
        (
            "spec",
            Shape::Fields(&[("containers", Shape::Each(&CONTAINER))]),
        ),
    ]);

    fn prune(shape: &'static Shape, text: &str) -> Value {
        let mut de = serde_json::Deserializer::from_str(text);
        let budget = Budget::new(1000);
        let value = Pruned(shape, &budget).deserialize(&mut de).unwrap();
        de.end().unwrap();
        value
    }

    #[test]
    fn keeps_only_listed_fields_in_order() {
        let text = json!({
            "spec": {
                "containers": [{
                    "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "name": "app",
                    "image": "x",
                }],
                "volumes": [{"name": "v"}],
            },
            "metadata": {"name": "p", "labels": {"a": "b"}, "n": [1, 2.5, null, true]},
            "status": {"phase": "Pending"},
        })
        .to_string();
        assert_eq!(
            prune(&POD, &text),
            json!({
                "spec": {"containers": [{"ports": [{"containerPort": 80}], "name": "app"}]},
                "metadata": {"name": "p", "labels": {"a": "b"}, "n": [1, 2.5, null, true]},
            })
        );
    }

    #[test]
    fn values_of_another_type_than_their_shape_are_kept_whole() {
        let text = r#"{"spec": {"containers": {"odd": [1]}}, "metadata": "m"}"#;
        assert_eq!(
            prune(&POD, text),
            json!({"spec": {"containers": {"odd": [1]}}, "metadata": "m"})
        );
        assert_eq!(
            prune(&POD, r#"{"spec": [{"containers": 1}, "x"]}"#),
            json!({"spec": [{"containers": 1}, "x"]})
        );
        assert_eq!(prune(&POD, "null"), Value::Null);
        assert_eq!(prune(&POD, "-3"), json!(-3));
    }

    #[test]
    fn escaped_keys_and_strings_are_decoded() {
        let text = r#"{"sp\u0065c": {"containers": [{"name": "a\"b"}]}, "x\ny": 1}"#;
        assert_eq!(
            prune(&POD, text),
            json!({"spec": {"containers": [{"name": "a\"b"}]}})
        );
    }

    #[test]
    fn invalid_json_is_an_error_even_in_skipped_fields() {
        let mut de = serde_json::Deserializer::from_str(r#"{"status": {"a": tru}}"#);
        assert!(Pruned(&POD, &Budget::new(1000))
            .deserialize(&mut de)
            .is_err());
    }

    #[test]
    fn kept_values_beyond_the_budget_fail_the_parse_and_skipped_ones_cost_nothing() {
        // Kept: the object, metadata, its "n" entry holding an array of three numbers (6 values).
        let text =
            r#"{"metadata": {"n": [1, 2, 3]}, "status": {"skipped": [1, 2, 3, 4, 5, 6, 7]}}"#;
        for (limit, fits) in [(6, true), (5, false)] {
            let mut de = serde_json::Deserializer::from_str(text);
            let budget = Budget::new(limit);
            let parsed = Pruned(&POD, &budget).deserialize(&mut de);
            match parsed {
                Ok(value) => assert!(fits, "limit {limit}: parsed {value}"),
                Err(error) => {
                    assert!(!fits, "limit {limit}: {error}");
                    assert!(
                        error
                            .to_string()
                            .contains("more than 5 values in the fields kept"),
                        "{error}"
                    );
                }
            }
        }
    }
}
