//! Response bodies: single JSON documents and the NDJSON watch stream.

use bytes::Bytes;
use futures::stream;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use std::convert::Infallible;
use tokio::sync::watch;
use weft_policy_index::InboundPolicy;

use super::metrics::ActiveWatch;
use crate::shutdown::Stopping;

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The last line of a watch whose pod was deleted.
#[derive(Serialize)]
struct PodDeleted<'a> {
    event: &'static str,
    namespace: &'a str,
    pod: &'a str,
}

/// One JSON document followed by a newline.
pub(crate) fn json_line(value: &impl Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value)
        .expect("policy API documents are plain structs with string keys, which always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

enum Phase {
    /// The current policy has not been sent yet.
    Start,
    /// Sending a line per change.
    Watching,
    /// The final line has been sent.
    Done,
}

struct WatchState {
    policy: watch::Receiver<InboundPolicy>,
    stop: Stopping,
    namespace: String,
    pod: String,
    phase: Phase,
    _active: ActiveWatch,
}

/// Streams the current policy, then a line per change; when the pod is deleted (its channel
/// closes), a final `{"event":"pod-deleted",...}` line, then the end. Ends without a final line
/// when the server shuts down. Dropping the body (client gone) releases `active`.
pub(crate) fn watch_stream(
    policy: watch::Receiver<InboundPolicy>,
    stop: Stopping,
    namespace: String,
    pod: String,
    active: ActiveWatch,
) -> Body {
    let state = WatchState {
        policy,
        stop,
        namespace,
        pod,
        phase: Phase::Start,
        _active: active,
    };
    let lines = stream::unfold(state, |mut state| async move {
        let line = match state.phase {
            Phase::Start => {
                state.phase = Phase::Watching;
                json_line(&*state.policy.borrow_and_update())
            }
            Phase::Watching => {
                let changed = tokio::select! {
                    biased;
                    () = state.stop.stopped() => return None,
                    changed = state.policy.changed() => changed,
                };
                match changed {
                    Ok(()) => json_line(&*state.policy.borrow_and_update()),
                    Err(_closed) => {
                        state.phase = Phase::Done;
                        json_line(&PodDeleted {
                            event: "pod-deleted",
                            namespace: &state.namespace,
                            pod: &state.pod,
                        })
                    }
                }
            }
            Phase::Done => return None,
        };
        Some((Ok::<_, Infallible>(Frame::data(line)), state))
    });
    StreamBody::new(lines).boxed_unsync()
}
