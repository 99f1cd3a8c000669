//! Opaque ports: `config.weft.dev/opaque-ports` on Services and pods.

use std::{fmt, ops::RangeInclusive};
/// The annotation that marks ports opaque (no protocol detection), on a Service (its ports) or
/// a pod (its container ports): comma-separated port numbers and ranges, e.g. `3306,5432-5433`.
pub use weft_core::names::OPAQUE_PORTS_ANNOTATION;
use weft_core::PortList;

/// A set of ports, kept as sorted, non-overlapping ranges (so `1-65535` stays small).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpaquePorts {
    ranges: Vec<RangeInclusive<u16>>,
}

/// Why an opaque-ports annotation value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} {problem}")]
pub struct InvalidOpaquePorts {
    /// The refused value.
    pub value: String,
    /// What is wrong with it, and the accepted form.
    pub problem: String,
}

impl From<&PortList> for OpaquePorts {
    fn from(list: &PortList) -> Self {
        Self::from_ranges(list.ranges().iter().map(|r| r.lo..=r.hi).collect())
    }
}

impl OpaquePorts {
    /// Parses an annotation value by the one rule of [`weft_core::ports`]: comma-separated ports
    /// and `low-high` ranges, blanks around items and empty items allowed (so an empty value marks
    /// no port), any other malformed item refusing the value.
    pub fn parse(value: &str) -> Result<Self, InvalidOpaquePorts> {
        PortList::parse(value)
            .map(|list| Self::from(&list))
            .map_err(|e| InvalidOpaquePorts {
                value: value.to_string(),
                problem: e.problem,
            })
    }

    /// Parses an optional annotation value; `describe` names the object in the warning logged
    /// when the value is malformed. Returns the ports (none when malformed) and whether the
    /// value was malformed.
    pub(crate) fn from_annotation(
        value: Option<&str>,
        describe: &dyn fmt::Display,
    ) -> (Self, bool) {
        let Some(value) = value else {
            return (Self::default(), false);
        };
        match Self::parse(value) {
            Ok(ports) => (ports, false),
            Err(error) => {
                tracing::warn!(
                    object = %describe,
                    annotation = OPAQUE_PORTS_ANNOTATION,
                    value,
                    %error,
                    "Ignoring a malformed opaque-ports annotation (Weft's or Linkerd's spelling): no port of this object is opaque"
                );
                (Self::default(), true)
            }
        }
    }

    /// As [`Self::from_annotation`], but `None` without an annotation (so a default can apply).
    pub(crate) fn from_optional_annotation(
        value: Option<&str>,
        describe: &dyn fmt::Display,
    ) -> (Option<Self>, bool) {
        match value {
            None => (None, false),
            Some(value) => {
                let (ports, invalid) = Self::from_annotation(Some(value), describe);
                (Some(ports), invalid)
            }
        }
    }

    fn from_ranges(mut ranges: Vec<RangeInclusive<u16>>) -> Self {
        ranges.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u16>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(*range.start()) <= u32::from(*last.end()) + 1 => {
                    if range.end() > last.end() {
                        *last = *last.start()..=*range.end();
                    }
                }
                _ => merged.push(range),
            }
        }
        Self { ranges: merged }
    }

    pub fn contains(&self, port: u16) -> bool {
        // The ranges are sorted and disjoint: the candidate is the last one starting at or
        // before `port`.
        let after = self.ranges.partition_point(|r| *r.start() <= port);
        after > 0 && self.ranges[after - 1].contains(&port)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> &[RangeInclusive<u16>] {
        &self.ranges
    }
}
