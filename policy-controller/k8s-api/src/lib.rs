//! Weft policy resources.
