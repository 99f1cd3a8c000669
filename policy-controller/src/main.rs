//! `weft-controller`: the Weft control-plane binary.

use clap::Parser;

// The webhook's hot path allocates many small, short-lived objects (parsed fields, the patch,
// the response); jemalloc serves them with less CPU than the system allocator (BENCHMARKS.md).
// Its background thread (the `background_threads` feature) purges the pages freed after a watch's
// list within seconds even when nothing else allocates: 63 -> 35 MiB with 2,000 pods (section 8).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weft_policy_controller::Args::parse().run().await
}
