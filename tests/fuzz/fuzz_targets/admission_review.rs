//! The mutating webhook's AdmissionReview parser. See `weft_injector::fuzz_checks::admission_review`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_injector::fuzz_checks::admission_review(data));
