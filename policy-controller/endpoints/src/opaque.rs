//! Opaque ports: `config.weft.dev/opaque-ports` on Services and pods.

use std::{fmt, ops::RangeInclusive};

/// The annotation that marks ports opaque (no protocol detection), on a Service (its ports) or
/// a pod (its container ports): comma-separated port numbers and ranges, e.g. `3306,5432-5433`.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.weft.dev/opaque-ports";

/// A set of ports, kept as sorted, non-overlapping ranges (so `1-65535` stays small).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpaquePorts {
    ranges: Vec<RangeInclusive<u16>>,
}

/// Why an opaque-ports annotation value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{item:?} is not a port (1-65535) or a port range like 5432-5433")]
pub struct InvalidOpaquePorts {
    /// The offending comma-separated item.
    pub item: String,
}

impl OpaquePorts {
    /// Parses an annotation value: comma-separated ports and `low-high` ranges, with optional
    /// spaces around items. An empty value (or only commas and spaces) marks no port.
    pub fn parse(value: &str) -> Result<Self, InvalidOpaquePorts> {
        let mut ranges = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let invalid = || InvalidOpaquePorts {
                item: item.to_string(),
            };
            let range = match item.split_once('-') {
                Some((low, high)) => {
                    let low = parse_port(low).ok_or_else(invalid)?;
                    let high = parse_port(high).ok_or_else(invalid)?;
                    if low > high {
                        return Err(invalid());
                    }
                    low..=high
                }
                None => {
                    let port = parse_port(item).ok_or_else(invalid)?;
                    port..=port
                }
            };
            ranges.push(range);
        }
        Ok(Self::from_ranges(ranges))
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
                    "Ignoring a malformed opaque-ports annotation: no port of this object is opaque"
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

fn parse_port(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}
