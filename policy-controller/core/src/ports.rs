//! Port lists such as `25,8000-8010` (`config.weft.dev/opaque-ports`, `skip-inbound-ports`, ...,
//! and the flags of the same names), parsed by one rule everywhere:
//!
//! - the value is comma-separated items; blanks around an item are allowed;
//! - an item is a port (1–65535) or a range `lo-hi` with `lo <= hi`;
//! - an empty item (`25,,26`, `25,`, `,25`) is skipped: a stray comma leaves no doubt about what
//!   was meant, and Linkerd's annotations of the same names accept it too; so an empty value, or
//!   one of only commas and blanks, is the empty list;
//! - any other item that is not a port or a range refuses the whole value (nothing is guessed).
//!
//! A refusal names the value and the accepted form; the caller adds the annotation or flag. (Before
//! this rule, the injector refused `25,,26` while the endpoints index accepted it.)

use std::fmt;

/// An inclusive range of TCP ports, `lo..=hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A list of ports and port ranges, kept in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(Vec<PortRange>);

/// Why a port list was refused: the problem, to follow the quoted value in a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct InvalidPortList {
    pub problem: String,
}

/// The accepted form, for messages.
pub const PORT_LIST_FORM: &str =
    "is not a list of ports (accepted: comma-separated ports 1-65535 and ranges lo-hi, e.g. \"25,8000-8010\")";

impl PortList {
    /// Parses a value by the rule of the module's documentation.
    pub fn parse(value: &str) -> Result<Self, InvalidPortList> {
        let mut ranges = Vec::new();
        let form = || InvalidPortList {
            problem: PORT_LIST_FORM.to_string(),
        };
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let range = match item.split_once('-') {
                Some((lo, hi)) => {
                    let lo = parse_port(lo.trim()).ok_or_else(form)?;
                    let hi = parse_port(hi.trim()).ok_or_else(form)?;
                    if lo > hi {
                        return Err(InvalidPortList {
                            problem: format!(
                                "has a range {item:?} whose start is above its end (ranges are lo-hi with lo <= hi)"
                            ),
                        });
                    }
                    PortRange { lo, hi }
                }
                None => {
                    let port = parse_port(item).ok_or_else(form)?;
                    PortRange { lo: port, hi: port }
                }
            };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(port))
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

/// A port number, 1–65535, in decimal digits only (no sign, no blanks).
pub fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepted_values() {
        for (value, ranges, shown) in [
            ("", vec![], ""),
            ("  ", vec![], ""),
            (" , ,", vec![], ""),
            ("25,,26", vec![(25, 25), (26, 26)], "25,26"),
            (",25,", vec![(25, 25)], "25"),
            ("25", vec![(25, 25)], "25"),
            (
                " 25 , 8000-8010 ",
                vec![(25, 25), (8000, 8010)],
                "25,8000-8010",
            ),
            ("8000 - 8010", vec![(8000, 8010)], "8000-8010"),
            ("443,25", vec![(443, 443), (25, 25)], "443,25"),
            ("1-65535", vec![(1, 65535)], "1-65535"),
        ] {
            let list = PortList::parse(value).unwrap();
            let got: Vec<(u16, u16)> = list.ranges().iter().map(|r| (r.lo, r.hi)).collect();
            assert_eq!(got, ranges, "{value:?}");
            assert_eq!(list.to_string(), shown, "{value:?}");
        }
    }

    #[test]
    fn refused_values() {
        for value in [
            "0", "65536", "http", "-5", "5-", "1-2-3", "+5", "25;26", "25,,x", "2 5",
        ] {
            assert_eq!(
                PortList::parse(value).unwrap_err().problem,
                PORT_LIST_FORM,
                "{value:?}"
            );
        }
        assert!(PortList::parse("10-5")
            .unwrap_err()
            .problem
            .contains("\"10-5\" whose start is above its end"));
    }

    #[test]
    fn contains() {
        let list = PortList::parse("25,8000-8010").unwrap();
        assert!(list.contains(25) && list.contains(8000) && list.contains(8010));
        assert!(!list.contains(26) && !list.contains(7999) && !list.contains(8011));
    }
}
