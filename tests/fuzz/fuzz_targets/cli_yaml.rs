//! `weft inject` and `weft uninject` on any YAML text. See `weft_injector::fuzz_checks::cli_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_injector::fuzz_checks::cli_yaml(data));
