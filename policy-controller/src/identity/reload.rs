//! The issuer in use, re-read when its files change on disk (a rotated Secret), published through a
//! `watch` channel so the identity service and the controller's own serving certificate pick it up.
//! A change that cannot be used keeps the previous issuer, logs an error and counts
//! `weft_identity_issuer_reload_errors_total`.

use super::{
    issuer::{Issuer, IssuerError, IssuerFiles, IssuerPem},
    metrics::IdentityMetrics,
};
use parking_lot::Mutex;
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::sync::watch;

/// How often the files are compared with the loaded ones. They are small; a Secret volume update
/// takes up to a minute to reach the pod anyway.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What a [`IssuerStore::reload`] did.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Loaded,
    /// The files changed (or cannot be read) and cannot be used: the previous issuer stays.
    Kept(IssuerError),
}

/// The current issuer and the files it came from.
#[derive(Debug)]
pub struct IssuerStore {
    files: IssuerFiles,
    tx: watch::Sender<Arc<Issuer>>,
    /// The contents last tried (used or refused), so a bad file is reported once, not per poll.
    seen: Mutex<Seen>,
    metrics: IdentityMetrics,
}

#[derive(Debug)]
struct Seen {
    pem: IssuerPem,
    read_error: Option<String>,
}

impl IssuerStore {
    /// Loads the issuer; fails if it cannot be used (so start-up fails clearly).
    pub fn load(
        files: IssuerFiles,
        metrics: IdentityMetrics,
        now: SystemTime,
    ) -> Result<Self, IssuerError> {
        let pem = files.read()?;
        let issuer = Issuer::from_pem(&files, &pem, now)?;
        metrics.issuer_loaded(issuer.not_after());
        Ok(Self {
            files,
            tx: watch::Sender::new(Arc::new(issuer)),
            seen: Mutex::new(Seen {
                pem,
                read_error: None,
            }),
            metrics,
        })
    }

    pub fn current(&self) -> Arc<Issuer> {
        self.tx.borrow().clone()
    }

    /// Notified whenever a new issuer is loaded.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Issuer>> {
        self.tx.subscribe()
    }

    pub fn files(&self) -> &IssuerFiles {
        &self.files
    }

    /// Re-reads the files; loads them if they changed.
    pub fn reload(&self, now: SystemTime) -> Reload {
        let mut seen = self.seen.lock();
        let pem = match self.files.read() {
            Ok(pem) => pem,
            Err(error) => {
                let message = error.to_string();
                if seen.read_error.as_ref() != Some(&message) {
                    tracing::error!(%error, "Cannot read the identity issuer files; keeping the loaded issuer");
                    self.metrics.issuer_reload_failed();
                    seen.read_error = Some(message);
                }
                return Reload::Kept(error);
            }
        };
        seen.read_error = None;
        if pem == seen.pem {
            return Reload::Unchanged;
        }
        seen.pem = pem;
        match Issuer::from_pem(&self.files, &seen.pem, now) {
            Ok(issuer) => {
                tracing::info!(
                    certs = %self.files.certs.display(),
                    anchors = %self.files.anchors.display(),
                    "Loaded a new identity issuer"
                );
                self.metrics.issuer_loaded(issuer.not_after());
                self.tx.send_replace(Arc::new(issuer));
                Reload::Loaded
            }
            Err(error) => {
                tracing::error!(%error, "The identity issuer files changed but cannot be used; keeping the loaded issuer");
                self.metrics.issuer_reload_failed();
                Reload::Kept(error)
            }
        }
    }

    /// Polls the files every `interval` until `shutdown` completes.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let store = self.clone();
                    // File reads and signature checks: off the async workers.
                    let _ = tokio::task::spawn_blocking(move || store.reload(SystemTime::now())).await;
                }
                () = &mut shutdown => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::test_pki::{replace, TestPki, DAY};

    #[test]
    fn a_rotation_is_loaded_and_a_bad_one_keeps_the_previous_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let files = TestPki::new(365 * DAY).write(dir.path());
        let now = SystemTime::now();
        let store = IssuerStore::load(files.clone(), IdentityMetrics::default(), now).unwrap();
        let mut updates = store.subscribe();
        let first = store.current();
        assert!(matches!(store.reload(now), Reload::Unchanged));
        assert!(!updates.has_changed().unwrap());

        let rotated = TestPki::new(30 * DAY);
        rotated.write(dir.path());
        assert!(matches!(store.reload(now), Reload::Loaded));
        assert!(updates.has_changed().unwrap());
        let second = updates.borrow_and_update().clone();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.anchors(), [rotated.root_der()]);

        // A key that does not match: kept, reported once.
        replace(
            &files.key,
            &rcgen::KeyPair::generate().unwrap().serialize_pem(),
        );
        assert!(matches!(
            store.reload(now),
            Reload::Kept(IssuerError::KeyMismatch { .. })
        ));
        assert!(Arc::ptr_eq(&second, &store.current()));
        assert!(matches!(store.reload(now), Reload::Unchanged));
        assert!(!updates.has_changed().unwrap());

        // Missing files: kept.
        std::fs::remove_file(&files.anchors).unwrap();
        assert!(matches!(
            store.reload(now),
            Reload::Kept(IssuerError::Read { .. })
        ));
        assert!(Arc::ptr_eq(&second, &store.current()));

        // Fixed: loaded.
        TestPki::new(DAY).write(dir.path());
        assert!(matches!(store.reload(now), Reload::Loaded));
        assert!(!Arc::ptr_eq(&second, &store.current()));
    }

    #[test]
    fn load_fails_on_an_unusable_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let files = TestPki::new(DAY).write(dir.path());
        let error = IssuerStore::load(
            files,
            IdentityMetrics::default(),
            SystemTime::now() + 2 * DAY,
        )
        .unwrap_err();
        assert!(matches!(error, IssuerError::Expired { .. }), "{error}");
    }
}
