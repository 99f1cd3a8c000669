//! Published answers: one `watch` channel per (key, port), created on first lookup and dropped
//! once nobody listens.

use prometheus_client::metrics::gauge::Gauge;
use std::{collections::HashMap, hash::Hash};
use tokio::sync::watch;

/// Below this many watches, lookups never sweep the whole map.
const MIN_SWEEP: usize = 64;

/// Watches grouped by key (a Service, an IP) so an update touches only that key's ports.
///
/// A sender without receivers is dropped when its key is next updated, and by sweeps that
/// lookups run whenever the number of watches has doubled since the last sweep, so one-off
/// lookups of keys that never change cannot pile up (amortized O(1) per lookup).
#[derive(Debug)]
pub(crate) struct Watches<K, T> {
    by_key: HashMap<K, HashMap<u16, watch::Sender<T>>>,
    len: usize,
    swept_len: usize,
    gauge: Gauge,
}

impl<K, T> Watches<K, T>
where
    K: Hash + Eq,
    T: PartialEq,
{
    pub(crate) fn new(gauge: Gauge) -> Self {
        Self {
            by_key: HashMap::new(),
            len: 0,
            swept_len: 0,
            gauge,
        }
    }

    /// Subscribes to `(key, port)`, creating the channel with `init()` when none exists.
    pub(crate) fn subscribe(
        &mut self,
        key: K,
        port: u16,
        init: impl FnOnce() -> T,
    ) -> watch::Receiver<T> {
        if let Some(tx) = self.by_key.get(&key).and_then(|ports| ports.get(&port)) {
            // Senders are kept current while they exist, even without receivers.
            return tx.subscribe();
        }
        if self.len >= MIN_SWEEP.max(self.swept_len.saturating_mul(2)) {
            self.sweep();
        }
        let (tx, rx) = watch::channel(init());
        self.by_key.entry(key).or_default().insert(port, tx);
        self.len += 1;
        self.set_gauge();
        rx
    }

    /// Recomputes the watches of `key` with `compute(port)`; receivers wake only when the value
    /// differs. Watches without receivers are dropped instead.
    pub(crate) fn update(&mut self, key: &K, mut compute: impl FnMut(u16) -> T) {
        let Some(ports) = self.by_key.get_mut(key) else {
            return;
        };
        let before = ports.len();
        ports.retain(|port, tx| {
            if tx.receiver_count() == 0 {
                return false;
            }
            let value = compute(*port);
            tx.send_if_modified(|current| {
                if *current == value {
                    return false;
                }
                *current = value;
                true
            });
            true
        });
        let removed = before - ports.len();
        if ports.is_empty() {
            self.by_key.remove(key);
        }
        if removed > 0 {
            self.len -= removed;
            self.set_gauge();
        }
    }

    /// Drops every watch without receivers.
    pub(crate) fn sweep(&mut self) {
        self.by_key.retain(|_, ports| {
            ports.retain(|_, tx| tx.receiver_count() > 0);
            !ports.is_empty()
        });
        self.len = self.by_key.values().map(HashMap::len).sum();
        self.swept_len = self.len;
        self.set_gauge();
    }

    fn set_gauge(&self) {
        self.gauge.set(i64::try_from(self.len).unwrap_or(i64::MAX));
    }
}
