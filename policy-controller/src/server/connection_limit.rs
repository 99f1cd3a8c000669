//! A bound on a server's open connections that silent clients cannot use to keep others out.
//!
//! A connection accepted while the bound is reached takes the place of the oldest open connection
//! that has not begun a request yet (a client that connected and sent nothing, or is still in its
//! TLS handshake): that one is ended at once, as its first-request deadline would have ended it.
//! When every open connection has begun a request, the new one is closed at once (rather than
//! left in the kernel's backlog, where its client would wait for its own timeout and the backlog
//! would fill): its client fails fast and can retry elsewhere, and the connections already open
//! keep being served.

use crate::server::shutdown::Activity;
use parking_lot::Mutex;
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Weak,
    },
    time::Duration,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// How often, at most, a server logs that its connection limit ended or refused connections.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a connection waits for the place of the connection it evicted (whose task has to
/// notice and end first).
const EVICTION_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ConnectionLimit {
    server: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    /// The admitted connections in the order they were accepted, as long as they may not have
    /// begun a request: the candidates for eviction, oldest first.
    unused: Mutex<VecDeque<Weak<Activity>>>,
    evicted: AtomicU64,
    refused: AtomicU64,
    logged_at: Mutex<Option<Instant>>,
}

impl ConnectionLimit {
    pub fn new(server: &'static str, max: usize) -> Self {
        Self {
            server,
            max,
            permits: Arc::new(Semaphore::new(max)),
            unused: Mutex::new(VecDeque::new()),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            logged_at: Mutex::new(None),
        }
    }

    /// A permit to hold for as long as the connection `activity` tracks is open, or `None` when
    /// the limit is reached and no open connection could make room (the connection is then to be
    /// closed). Evictions and refusals are logged, at most once per [`LIMIT_LOG_INTERVAL`], with
    /// how many there were so far.
    pub async fn admit(&self, activity: &Arc<Activity>) -> Option<OwnedSemaphorePermit> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.evict_oldest_unused() => {
                let freed = self.permits.clone().acquire_owned();
                tokio::time::timeout(EVICTION_WAIT, freed)
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        match permit {
            Some(permit) => {
                self.remember(activity);
                Some(permit)
            }
            None => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.log();
                None
            }
        }
    }

    fn remember(&self, activity: &Arc<Activity>) {
        let mut unused = self.unused.lock();
        // Connections that ended or began a request are dropped from the queue when a search
        // passes them; without searches (the limit never reached) they are pruned here.
        if unused.len() >= 2 * self.max {
            unused.retain(|a| a.upgrade().is_some_and(|a| a.unused()));
        }
        unused.push_back(Arc::downgrade(activity));
    }

    /// Ends the oldest open connection that has not begun a request; false when there is none.
    fn evict_oldest_unused(&self) -> bool {
        let mut unused = self.unused.lock();
        while let Some(candidate) = unused.pop_front() {
            if candidate.upgrade().is_some_and(|a| a.evict_if_unused()) {
                drop(unused);
                self.evicted.fetch_add(1, Ordering::Relaxed);
                self.log();
                return true;
            }
        }
        false
    }

    fn log(&self) {
        let mut logged_at = self.logged_at.lock();
        if logged_at.is_none_or(|at| at.elapsed() >= LIMIT_LOG_INTERVAL) {
            *logged_at = Some(Instant::now());
            tracing::warn!(
                server = self.server,
                max = self.max,
                evicted = self.evicted.load(Ordering::Relaxed),
                refused = self.refused.load(Ordering::Relaxed),
                "Connection limit reached: connections that sent no request are ended to make room, new ones are closed when none did"
            );
        }
    }
}
