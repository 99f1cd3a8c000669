//! The inbound policy API's workload string. See `weft_policy_controller::fuzz_checks::workload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_policy_controller::fuzz_checks::workload(data));
