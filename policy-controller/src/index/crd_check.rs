//! Waiting for a CustomResourceDefinition before watching its resources.
//!
//! A watch of a resource whose CRD is not installed fails with `404 page not found` on every
//! retry, and kube and kubert log each failure: a stream of warnings that does not say what is
//! wrong. Instead, before a watch starts, [`wait_until_served`] lists the resource once with
//! `limit=1` (the controller's RBAC already allows `list`, no access to CRDs is needed) until the
//! API server serves it. While the CRD is missing, one error naming the CRD and how to install it
//! is logged every [`LOG_INTERVAL`]; the watch is not started, so its readiness handle (and the
//! [`SyncGate`](super::SyncGate)) keep `/ready` false. Once the CRD is installed the watch starts,
//! without a restart.
//!
//! The decisions (what a probe's answer means, when to log, how long to wait) are the pure
//! [`CrdWait`]; [`wait_until_served`] only sends the requests.

use kube::{api::ListParams, Api, CustomResourceExt, Resource};
use std::time::{Duration, Instant};

/// How often the error about a missing CRD (or the warning about an unanswered probe) is repeated.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// How long to wait before probing again for a CRD that is not installed.
pub const MISSING_RETRY: Duration = Duration::from_secs(2);

/// How long to wait before probing again after a probe that got no usable answer (the API server
/// unreachable or failing); the same delay kubert's watches use after an error.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

/// How to install the CRDs, for the error message.
pub const INSTALL_HINT: &str = "install the CRDs with `kubectl apply -f charts/weft/crds/` \
    (or install the Helm chart charts/weft, which ships them in crds/)";

/// How the controller depends on a CRD, for what it says while the CRD is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A Weft policy CRD: its watch holds `/ready` until it has synced.
    Weft,
    /// The Gateway API's HTTPRoute CRD, a prerequisite of per-route policy only: its watch does
    /// not hold `/ready` (a cluster without the Gateway API still gets injection and
    /// Server-level policy), and HTTPRoutes apply once it is installed.
    GatewayApi,
}

/// How to install the Gateway API CRDs, for the error message.
pub const GATEWAY_API_HINT: &str = "install the Gateway API standard CRDs (v1.2.1 or later, e.g.     `kubectl apply --server-side -f` their config/crd/standard; in a Weft checkout     `bin/gateway-api-crds` prints a local copy)";

/// What one probe of the resource said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The API server lists the resource: its CRD is installed.
    Served,
    /// `404 Not Found`: the API server does not know the resource, so its CRD is not installed.
    Missing,
    /// Any other answer, or none (forbidden, a server error, the connection failed): whether the
    /// CRD is installed is unknown.
    Unavailable(String),
}

impl Probe {
    /// Classifies the HTTP status of the probe's `list` request.
    pub fn from_status(status: http::StatusCode) -> Self {
        if status.is_success() {
            Probe::Served
        } else if status == http::StatusCode::NOT_FOUND {
            Probe::Missing
        } else if status == http::StatusCode::FORBIDDEN {
            Probe::Unavailable(format!(
                "the API server answered {status}: the controller's RBAC does not allow listing \
                 the resource (the chart's ClusterRole grants get, list and watch)"
            ))
        } else {
            Probe::Unavailable(format!("the API server answered {status}"))
        }
    }
}

/// What to log after a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Log {
    /// The CRD is not installed (an error).
    Missing,
    /// The probe got no usable answer (a warning), with the reason.
    Unavailable(String),
    /// The CRD was missing before and is installed now (info).
    Installed,
}

/// What to do after a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Start the watch.
    Watch,
    /// Probe again after this delay.
    RetryIn(Duration),
}

/// The decisions of waiting for one CRD: fed every probe's answer with the time it came, it says
/// what to log (at most once per [`LOG_INTERVAL`] for the same kind of problem) and what to do next.
#[derive(Debug, Default)]
pub struct CrdWait {
    /// The kind of problem last logged, and when.
    last_logged: Option<(Problem, Instant)>,
    missing_seen: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    Missing,
    Unavailable,
}

impl CrdWait {
    pub fn observe(&mut self, probe: Probe, now: Instant) -> (Option<Log>, Next) {
        match probe {
            Probe::Served => {
                let log = self.missing_seen.then_some(Log::Installed);
                (log, Next::Watch)
            }
            Probe::Missing => {
                self.missing_seen = true;
                let log = self.throttle(Problem::Missing, now).then_some(Log::Missing);
                (log, Next::RetryIn(MISSING_RETRY))
            }
            Probe::Unavailable(reason) => {
                let log = self
                    .throttle(Problem::Unavailable, now)
                    .then_some(Log::Unavailable(reason));
                (log, Next::RetryIn(UNAVAILABLE_RETRY))
            }
        }
    }

    /// Whether to log `problem` now: when it is new, or was last logged `LOG_INTERVAL` ago.
    fn throttle(&mut self, problem: Problem, now: Instant) -> bool {
        let due = match self.last_logged {
            Some((last, at)) if last == problem => {
                now.saturating_duration_since(at) >= LOG_INTERVAL
            }
            _ => true,
        };
        if due {
            self.last_logged = Some((problem, now));
        }
        due
    }
}

/// Returns `true` once the API server serves `T` (see [`wait_until_served`]), or `false` when
/// shutdown begins first. The caller then drops its unpolled watch, which releases the watch's
/// shutdown handle: an unpolled watch never sees the signal, and would hold shutdown up forever.
pub async fn served_before_shutdown<T>(
    client: kube::Client,
    shutdown: kubert::shutdown::Watch,
    requirement: Requirement,
) -> bool
where
    T: Resource<DynamicType = ()> + CustomResourceExt,
{
    tokio::select! {
        () = wait_until_served::<T>(client, requirement) => true,
        _release = shutdown.signaled() => false,
    }
}

/// Returns once the API server serves `T` (its CRD is installed), logging as [`CrdWait`] decides
/// while it does not.
pub async fn wait_until_served<T>(client: kube::Client, requirement: Requirement)
where
    T: Resource<DynamicType = ()> + CustomResourceExt,
{
    let crd = T::crd_name();
    let kind = T::kind(&());
    let api = Api::<T>::all(client.clone());
    let mut wait = CrdWait::default();
    loop {
        let probe = probe(&client, api.resource_url()).await;
        let (log, next) = wait.observe(probe, Instant::now());
        match log {
            Some(Log::Missing) if requirement == Requirement::GatewayApi => tracing::error!(
                crd,
                "The CRD {crd} is not installed, so {kind} resources cannot be watched and per-route \
                 policy does not apply (injection and Server-level policy work): {GATEWAY_API_HINT}. \
                 The controller starts watching once it is installed; no restart is needed"
            ),
            Some(Log::Missing) => tracing::error!(
                crd,
                "The CRD {crd} is not installed, so {kind} resources cannot be watched and /ready \
                 stays false: {INSTALL_HINT}. The controller starts watching once it is installed; \
                 no restart is needed"
            ),
            Some(Log::Unavailable(reason)) => tracing::warn!(
                crd,
                %reason,
                "Cannot tell whether the CRD {crd} is installed yet; retrying"
            ),
            Some(Log::Installed) => {
                tracing::info!(
                    crd,
                    "The CRD {crd} is installed now; watching {kind} resources"
                )
            }
            None => {}
        }
        match next {
            Next::Watch => return,
            Next::RetryIn(delay) => tokio::time::sleep(delay).await,
        }
    }
}

/// Lists at most one object at `url`. The request is sent as is (not through `Api::list`), so the
/// client does not log the API server's plain-text `404 page not found` body as a warning.
async fn probe(client: &kube::Client, url: &str) -> Probe {
    let request = match kube::core::Request::new(url).list(&ListParams::default().limit(1)) {
        Ok(request) => request.map(kube::client::Body::from),
        Err(error) => return Probe::Unavailable(format!("building the request failed: {error}")),
    };
    match client.send(request).await {
        Ok(response) => Probe::from_status(response.status()),
        Err(error) => Probe::Unavailable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(Probe::from_status(StatusCode::OK), Probe::Served);
        assert_eq!(Probe::from_status(StatusCode::NOT_FOUND), Probe::Missing);
        for status in [
            StatusCode::FORBIDDEN,
            StatusCode::UNAUTHORIZED,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(
                matches!(Probe::from_status(status), Probe::Unavailable(ref r) if r.contains(status.as_str())),
                "{status}"
            );
        }
    }

    #[test]
    fn served_at_once_watches_without_logging() {
        let mut wait = CrdWait::default();
        assert_eq!(
            wait.observe(Probe::Served, Instant::now()),
            (None, Next::Watch)
        );
    }

    #[test]
    fn missing_is_logged_once_per_interval_until_installed() {
        let start = Instant::now();
        let mut wait = CrdWait::default();
        let mut logged = vec![];
        // Probe as the loop does, every MISSING_RETRY, for 65 seconds.
        let mut t = Duration::ZERO;
        while t <= Duration::from_secs(65) {
            let (log, next) = wait.observe(Probe::Missing, start + t);
            assert_eq!(next, Next::RetryIn(MISSING_RETRY));
            if let Some(log) = log {
                assert_eq!(log, Log::Missing);
                logged.push(t.as_secs());
            }
            t += MISSING_RETRY;
        }
        assert_eq!(logged, [0, 30, 60]);

        let (log, next) = wait.observe(Probe::Served, start + t);
        assert_eq!((log, next), (Some(Log::Installed), Next::Watch));
    }

    #[test]
    fn a_different_problem_is_logged_at_once() {
        let start = Instant::now();
        let mut wait = CrdWait::default();
        let reason = "connection refused".to_string();
        assert_eq!(
            wait.observe(Probe::Unavailable(reason.clone()), start),
            (
                Some(Log::Unavailable(reason.clone())),
                Next::RetryIn(UNAVAILABLE_RETRY)
            )
        );
        assert_eq!(
            wait.observe(Probe::Unavailable(reason), start + UNAVAILABLE_RETRY),
            (None, Next::RetryIn(UNAVAILABLE_RETRY))
        );
        // The API server answers now, and the CRD is missing: that is news, logged right away.
        let (log, _) = wait.observe(Probe::Missing, start + 2 * UNAVAILABLE_RETRY);
        assert_eq!(log, Some(Log::Missing));
    }
}
