//! The `weft` command's library: its arguments ([`cli`]), the offline `inject`/`uninject` front
//! ends (the injection itself is `weft_injector`'s, the same code the webhook runs), `weft check`
//! ([`check`]: the checks are pure, [`check::fetch`] reads the installation), `weft policy`
//! ([`policy_cli`]) and `weft endpoints` ([`endpoints_cli`]) with the connection to the
//! controller's gRPC API ([`grpc_client`]). The controller does not link any of this.

pub mod check;
pub mod cli;
pub mod endpoints_cli;
mod grpc_client;
pub mod policy_cli;
