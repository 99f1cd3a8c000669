//! The validating webhook's review of policy resources and HTTPRoutes. See `weft_policy_controller::fuzz_checks::validate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_policy_controller::fuzz_checks::validate(data));
