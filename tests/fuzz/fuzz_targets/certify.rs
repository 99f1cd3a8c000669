//! The identity service's checks of a Certify request: token review status, identity, CSR. See `weft_policy_controller::fuzz_checks::certify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_policy_controller::fuzz_checks::certify(data));
