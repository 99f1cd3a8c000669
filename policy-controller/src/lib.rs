//! The Weft controller runtime.
