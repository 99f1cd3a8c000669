//! The inbound policy API's workload string. See `weft_e2e::fuzz_checks::workload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_e2e::fuzz_checks::workload(data));
