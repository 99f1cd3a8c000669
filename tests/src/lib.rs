//! Weft end-to-end test harness.
