//! Waiting for a CustomResourceDefinition before watching its resources.
//!
//! A watch of a resource whose CRD is not installed fails with `404 page not found` on every
//! retry, and kube and kubert log each failure: a stream of warnings that does not say what is
//! wrong. Instead, before a watch starts, [`wait_until_served`] lists the resource once with
//! `limit=1` (the controller's RBAC already allows `list`, no access to CRDs is needed) until the
//! API server serves it. While the CRD is missing, one error naming the CRD and how to install it
//! is logged every [`LOG_INTERVAL`], and the watch is not started. Once the CRD is installed the
//! watch starts, without a restart.
//!
//! What a missing CRD does to `/ready` depends on the [`Requirement`]: a required CRD (Weft's own
//! policy CRDs) holds it until the CRD is installed and its resources are listed; an optional one
//! (an API group the cluster may not have, such as the Gateway API's) releases it as soon as the
//! API server says the CRD is not installed. [`super::crd_watch`] wires this to the watches.
//!
//! The decisions (what a probe's answer means, when to log, how long to wait, when readiness is
//! released) are the pure [`CrdWait`] and [`Requirement::releases_ready_on`];
//! [`wait_until_served`] only sends the requests.

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

/// How the controller depends on a CRD, for what it says while the CRD is missing and whether the
/// CRD holds `/ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A Weft policy CRD: its watch holds `/ready` until the CRD is installed and its resources
    /// have been listed and indexed.
    Required,
    /// A CRD of an API group the cluster may not have. Its watch never holds `/ready` because the
    /// CRD is missing: the first probe that finds it missing releases readiness, and its resources
    /// are watched once it is installed. When the API server serves it, its watch holds `/ready`
    /// until its first list has been indexed, like a required one, so a ready controller has a
    /// complete view of what exists.
    Optional(&'static OptionalGroup),
}

/// What the controller says about an optional CRD while it is missing.
#[derive(Debug, PartialEq, Eq)]
pub struct OptionalGroup {
    /// What does not work without the CRD, and what still does.
    pub without_it: &'static str,
    /// How to install the CRD.
    pub install_hint: &'static str,
}

/// The Gateway API's HTTPRoute CRD, a prerequisite of per-route policy only: a cluster without
/// the Gateway API still gets injection, identity, Server-level policy and destination.
pub const GATEWAY_API: OptionalGroup = OptionalGroup {
    without_it: "per-route policy does not apply (injection, identity, Server-level policy and \
                 destination work, and /ready does not wait for it)",
    install_hint: "install the Gateway API standard CRDs (v1.2.1 or later, e.g. \
                   `kubectl apply --server-side -f` their config/crd/standard; in a Weft \
                   checkout `bin/gateway-api-crds` prints a local copy)",
};

impl Requirement {
    /// Whether a watch of this requirement stops holding `/ready` after `probe`: an optional CRD
    /// the API server says is not installed. Any other answer keeps readiness held (the CRD may be
    /// installed, and an unreachable API server holds every other watch too).
    pub fn releases_ready_on(self, probe: &Probe) -> bool {
        matches!((self, probe), (Requirement::Optional(_), Probe::Missing))
    }
}

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
    ready: &mut Option<kubert::initialized::Handle>,
) -> bool
where
    T: Resource<DynamicType = ()> + CustomResourceExt,
{
    tokio::select! {
        () = wait_until_served::<T>(client, requirement, ready) => true,
        _release = shutdown.signaled() => false,
    }
}

/// Returns once the API server serves `T` (its CRD is installed), logging as [`CrdWait`] decides
/// while it does not, and dropping `ready` (releasing the readiness it holds) when
/// [`Requirement::releases_ready_on`] says so.
pub async fn wait_until_served<T>(
    client: kube::Client,
    requirement: Requirement,
    ready: &mut Option<kubert::initialized::Handle>,
) where
    T: Resource<DynamicType = ()> + CustomResourceExt,
{
    let crd = T::crd_name();
    let kind = T::kind(&());
    let api = Api::<T>::all(client.clone());
    let mut wait = CrdWait::default();
    loop {
        let probe = probe(&client, api.resource_url()).await;
        if requirement.releases_ready_on(&probe) && ready.take().is_some() {
            tracing::debug!(crd, "An optional CRD is missing; it does not hold /ready");
        }
        let (log, next) = wait.observe(probe, Instant::now());
        match (log, requirement) {
            (Some(Log::Missing), Requirement::Optional(group)) => tracing::error!(
                crd,
                "The CRD {crd} is not installed, so {kind} resources cannot be watched and {}: \
                 {}. The controller starts watching once it is installed; no restart is needed",
                group.without_it,
                group.install_hint,
            ),
            (Some(Log::Missing), Requirement::Required) => tracing::error!(
                crd,
                "The CRD {crd} is not installed, so {kind} resources cannot be watched and /ready \
                 stays false: {INSTALL_HINT}. The controller starts watching once it is installed; \
                 no restart is needed"
            ),
            (Some(Log::Unavailable(reason)), _) => tracing::warn!(
                crd,
                %reason,
                "Cannot tell whether the CRD {crd} is installed yet; retrying"
            ),
            (Some(Log::Installed), _) => {
                tracing::info!(
                    crd,
                    "The CRD {crd} is installed now; watching {kind} resources"
                )
            }
            (None, _) => {}
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

    #[test]
    fn only_a_missing_optional_crd_releases_readiness() {
        let optional = Requirement::Optional(&GATEWAY_API);
        let unavailable = Probe::Unavailable("connection refused".to_string());
        let table = [
            (Requirement::Required, Probe::Served, false),
            (Requirement::Required, Probe::Missing, false),
            (Requirement::Required, unavailable.clone(), false),
            (optional, Probe::Served, false),
            (optional, Probe::Missing, true),
            (optional, unavailable, false),
        ];
        for (requirement, probe, releases) in table {
            assert_eq!(
                requirement.releases_ready_on(&probe),
                releases,
                "{requirement:?} after {probe:?}"
            );
        }
    }
}
