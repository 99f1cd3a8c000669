//! Weft inbound policy index.
