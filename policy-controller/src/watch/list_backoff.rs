//! A growing delay between failed lists of a watch.
//!
//! kube's watcher starts every list with an `Init` event and reports a failed list as an error;
//! kubert's watch (`Runtime::watch_all`) logs each error and delays a retry only after two errors
//! in a row. The `Init` between two failed lists counts as a success there, so a list that keeps
//! failing (the API server unreachable, overloaded or refusing) was retried at once, thousands of
//! times a second per watch: the controller then burned its CPU, flooded its log and hammered an
//! API server that was already in trouble.
//!
//! [`AfterFailedLists`] wraps such a watch. An `Init` that arrives while a list is still under way
//! (no `InitDone` since the last `Init`) means that list failed; before it polls the watch again
//! (which starts the next list) it waits [`ListRetries::delay`]: 500 ms after the first failure,
//! doubling to [`MAX_DELAY`], each shortened by a random part of up to a half so that replicas do
//! not retry in step. A complete list (`InitDone`) starts the count again. Errors of a running
//! watch (after its list) are kubert's: it retries them after its fixed delay.
//!
//! The decisions are the pure [`ListRetries`]; [`AfterFailedLists`] only sleeps.

use futures::Stream;
use kube::runtime::watcher::Event;
use std::{
    future::Future,
    hash::{BuildHasher, Hasher},
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};

/// The delay after the first failed list.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);

/// The longest delay between two lists (before jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// What a watch's events say about its lists.
#[derive(Debug, Default)]
pub struct ListRetries {
    listing: bool,
    failures: u32,
}

impl ListRetries {
    /// Observes one event of the watch. `Some(failures)` when it shows that the list before it
    /// failed: the number of lists that failed in a row.
    pub fn observe<K>(&mut self, event: &Event<K>) -> Option<u32> {
        match event {
            Event::Init if self.listing => {
                self.failures = self.failures.saturating_add(1);
                Some(self.failures)
            }
            Event::Init => {
                self.listing = true;
                None
            }
            Event::InitDone => {
                self.listing = false;
                self.failures = 0;
                None
            }
            Event::InitApply(_) | Event::Apply(_) | Event::Delete(_) => None,
        }
    }

    /// The delay before the next list after `failures` failed lists in a row; `jitter` (0.0 to
    /// 1.0) shortens it by up to a half.
    pub fn delay(failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        let full = FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
        full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// A random number from 0.0 to 1.0, from the standard library's per-process random hash keys.
fn jitter() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A watch that waits [`ListRetries::delay`] after each failed list before it lists again.
pub struct AfterFailedLists<S> {
    watch: Pin<Box<S>>,
    retries: ListRetries,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> std::fmt::Debug for AfterFailedLists<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfterFailedLists")
            .field("retries", &self.retries)
            .field("sleeping", &self.sleep.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> AfterFailedLists<S> {
    pub fn new(watch: S) -> Self {
        Self {
            watch: Box::pin(watch),
            retries: ListRetries::default(),
            sleep: None,
        }
    }
}

impl<S, K> Stream for AfterFailedLists<S>
where
    S: Stream<Item = Event<K>>,
{
    type Item = Event<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<K>>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let event = ready!(this.watch.as_mut().poll_next(cx));
        if let Some(failures) = event.as_ref().and_then(|e| this.retries.observe(e)) {
            let delay = ListRetries::delay(failures, jitter());
            tracing::debug!(
                failures,
                ?delay,
                "Listing failed; listing again after a delay"
            );
            this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        }
        Poll::Ready(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    type Ev = Event<&'static str>;

    #[test]
    fn an_init_during_a_list_counts_a_failure_and_a_complete_list_resets_the_count() {
        let mut retries = ListRetries::default();
        let seen: Vec<Option<u32>> = [
            Ev::Init,
            Ev::Init,
            Ev::Init,
            Ev::InitApply("a"),
            Ev::Init,
            Ev::InitApply("a"),
            Ev::InitDone,
            Ev::Apply("b"),
            Ev::Delete("b"),
            // A restarted watch (e.g. after `410 Gone`) lists again: not a failure.
            Ev::Init,
            Ev::InitDone,
            Ev::Init,
            Ev::Init,
        ]
        .iter()
        .map(|e| retries.observe(e))
        .collect();
        assert_eq!(
            seen,
            [
                None,
                Some(1),
                Some(2),
                None,
                Some(3),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(1)
            ]
        );
    }

    #[test]
    fn delays_double_to_the_maximum_and_jitter_shortens_them_by_up_to_a_half() {
        let table = [
            (1, 0.0, 500),
            (2, 0.0, 1_000),
            (3, 0.0, 2_000),
            (5, 0.0, 8_000),
            (6, 0.0, 10_000),
            (u32::MAX, 0.0, 10_000),
            (1, 1.0, 250),
            (6, 1.0, 5_000),
            (3, 0.5, 1_500),
            // Out of range jitter is clamped.
            (1, 7.0, 250),
            (1, -1.0, 500),
        ];
        for (failures, jitter, millis) in table {
            assert_eq!(
                ListRetries::delay(failures, jitter),
                Duration::from_millis(millis),
                "{failures} failures, jitter {jitter}"
            );
        }
    }

    #[test]
    fn jitter_is_between_zero_and_one() {
        for _ in 0..1_000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    /// A watch whose lists keep failing yields `Init` after `Init`; the wrapper polls it again
    /// only after the delay.
    #[tokio::test(start_paused = true)]
    async fn a_failing_list_is_retried_after_growing_delays() {
        let polled = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let log = polled.clone();
        let watch = futures::stream::repeat_with(move || {
            log.lock().push(start.elapsed());
            Ev::Init
        });
        let mut watch = AfterFailedLists::new(watch);
        for _ in 0..5 {
            watch.next().await;
        }
        let polled = polled.lock().clone();
        let gaps: Vec<Duration> = polled.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[0], Duration::ZERO, "the first list starts at once");
        for (gap, failures) in gaps[1..].iter().zip(1..) {
            let full = ListRetries::delay(failures, 0.0);
            assert!(
                *gap <= full && *gap >= full / 2,
                "after {failures} failures the next list came after {gap:?}, expected {:?} to {full:?}",
                full / 2
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_list_and_watch_events_pass_without_delay() {
        let events = vec![Ev::Init, Ev::InitApply("a"), Ev::InitDone, Ev::Apply("b")];
        let start = tokio::time::Instant::now();
        let out: Vec<Ev> = AfterFailedLists::new(futures::stream::iter(events))
            .collect()
            .await;
        assert_eq!(out.len(), 4);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
