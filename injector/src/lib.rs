//! Weft proxy injection.
