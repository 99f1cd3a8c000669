//! The /inject webhook's decision and JSON patch, checked by applying it. See `weft_injector::fuzz_checks::inject_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_injector::fuzz_checks::inject_patch(data));
