//! The injection logic alone, on every request of the shared admission corpus (issue 6, benchmark 1):
//!
//! - `webhook/<case>`: parse the AdmissionReview, decide, build the patch, serialize the response, i.e. what
//!   the webhook does per request apart from HTTP and TLS;
//! - `parse/<case>` and `respond/<case>`: the two halves, to see which one a case spends its time in.
//!
//! Run with `cargo bench -p weft-injector --bench admission` (add a filter such as `-- webhook/03` for one case).
//! Targets: `03-web-deployment` under 20 µs; `11-huge-env` and `12-twenty-containers` under 1 ms.

mod corpus;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use weft_injector::admission;

fn benches(c: &mut Criterion) {
    let cases = corpus::load();
    let injector = corpus::injector();
    let namespace = corpus::enabled_namespace();

    let mut webhook = c.benchmark_group("webhook");
    for case in &cases {
        webhook.throughput(Throughput::Bytes(case.body.len() as u64));
        webhook.bench_with_input(
            BenchmarkId::from_parameter(&case.name),
            &case.body,
            |b, body| b.iter(|| corpus::answer(&injector, black_box(body), &namespace)),
        );
    }
    webhook.finish();

    let mut parse = c.benchmark_group("parse");
    for case in &cases {
        parse.throughput(Throughput::Bytes(case.body.len() as u64));
        parse.bench_with_input(
            BenchmarkId::from_parameter(&case.name),
            &case.body,
            |b, body| b.iter(|| admission::parse_review(black_box(body)).is_ok()),
        );
    }
    parse.finish();

    let mut respond = c.benchmark_group("respond");
    for case in &cases {
        let request =
            admission::parse_review(&case.body).expect("every corpus body is an AdmissionReview");
        let ns = matches!(
            admission::first_look(&injector, request.clone()),
            admission::FirstLook::NeedsNamespace(_)
        )
        .then_some(&namespace);
        respond.bench_function(BenchmarkId::from_parameter(&case.name), |b| {
            b.iter(|| {
                admission::respond(&injector, black_box(&request), ns)
                    .review
                    .len()
            })
        });
    }
    respond.finish();
}

criterion_group! {
    name = admission_benches;
    // Short runs: 21 cases × 3 groups; the machine is shared, so medians over many samples matter more than
    // long measurements.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = benches
}
criterion_main!(admission_benches);
