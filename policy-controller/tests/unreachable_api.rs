//! The real `weft-controller` binary with an API server that refuses every connection: its watches
//! retry their lists after growing delays instead of at once, so the controller neither burns its
//! CPU nor floods its log (nor, with a real API server in trouble, hammers it).
//!
//! Before the delays, each of the four watches that start without a CRD (namespaces, pods,
//! services, endpoint slices) retried its list thousands of times a second: ~23,000 log lines a
//! second and both CPUs busy.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // The PKI and request helpers serve the other test files.
mod support;

use std::time::Duration;
use support::controller::Controller;

/// How long the controller is watched.
const WINDOW: Duration = Duration::from_secs(6);

/// The four watches list at once, then after 0.25–0.5 s, 0.5–1 s, 1–2 s and 2–4 s: at most 6
/// lists each in the window. Twice that leaves room for a slow start; the retry loop it guards
/// against logs thousands.
const MAX_FAILED_LISTS: usize = 4 * 6 * 2;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime: fields 14 and 15 of stat(5), here 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_lists_are_retried_after_growing_delays() {
    let controller = Controller::start().await;
    let before = cpu_ticks(controller.child.id());
    tokio::time::sleep(WINDOW).await;
    let cpu = cpu_ticks(controller.child.id()) - before;

    let log = std::fs::read_to_string(&controller.log).unwrap();
    let failed_lists = log
        .lines()
        .filter(|l| l.contains("stream failed") && l.contains("initial object list"))
        .count();
    let ticks_per_second = 100.0;
    println!(
        "{failed_lists} failed lists logged in {WINDOW:?} (and the time before it); CPU {:.2} s",
        cpu as f64 / ticks_per_second
    );
    assert!(
        failed_lists > 0,
        "no failed list was logged: the test does not see what it counts\n{}",
        controller.log_tail()
    );
    assert!(
        failed_lists <= MAX_FAILED_LISTS,
        "{failed_lists} failed lists logged in about {WINDOW:?}, at most {MAX_FAILED_LISTS} expected: the watches retry without a delay\n{}",
        controller.log_tail()
    );
}
