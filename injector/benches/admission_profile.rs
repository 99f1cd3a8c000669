//! Runs one corpus case a fixed number of times, for instruction-level profiling with callgrind, whose counts
//! are stable on a noisy shared machine (unlike wall-clock time):
//!
//! ```text
//! cargo bench -p weft-injector --bench admission_profile --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/deps/admission_profile-<hash> 03 1000
//! callgrind_annotate /tmp/cg.out | head -40
//! ```
//!
//! Arguments: a case-name prefix (`03`, `11-huge`, ...; default `03`) and an iteration count (default 1000).
//! `bin/bench-injector-profile` does all of this and prints instructions per request for every case.
//! It prints `<case> <iterations> <answer bytes>` so a run can be checked.

mod corpus;

use std::hint::black_box;

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let prefix = args.first().map(String::as_str).unwrap_or("03");
    let iterations: u64 = match args.get(1) {
        None => 1000,
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("admission_profile: the iteration count must be a whole number, got {n:?}");
            std::process::exit(2)
        }),
    };
    let cases = corpus::load();
    let Some(case) = cases.iter().find(|c| c.name.starts_with(prefix)) else {
        eprintln!(
            "admission_profile: no corpus case starts with {prefix:?}; cases: {}",
            cases
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(2)
    };
    let injector = corpus::injector();
    let namespace = corpus::enabled_namespace();
    let mut bytes = 0;
    for _ in 0..iterations {
        bytes = corpus::answer(&injector, black_box(&case.body), &namespace);
    }
    println!("{} {iterations} {bytes}", case.name);
}
