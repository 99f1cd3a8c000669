//! What the inbound policy API reads: the policy index, behind a small trait so the service can be
//! tested with watch channels the tests drive themselves (as the Destination side does with
//! [`crate::destination::EndpointsSource`]).

use std::fmt;
use tokio::sync::watch;
use weft_policy_index::{InboundPolicy, LookupError, SharedIndex};

/// The lookup `GetPort` and `WatchPort` make. [`SharedIndex`] implements it.
///
/// The receiver changes when the port's policy does; its sender is dropped when the pod is
/// deleted, which ends the streams that watch it.
pub trait PolicySource: fmt::Debug + Send + Sync + 'static {
    /// The policy of a pod's port, or why there is none (the pod is not known, the port is not
    /// one, too many undeclared ports are watched).
    fn pod_port_policy(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<watch::Receiver<InboundPolicy>, LookupError>;
}

impl PolicySource for SharedIndex {
    fn pod_port_policy(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<watch::Receiver<InboundPolicy>, LookupError> {
        self.read().pod_port_policy(namespace, pod, port)
    }
}
