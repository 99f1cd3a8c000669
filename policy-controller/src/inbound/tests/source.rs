//! The service against a fake [`PolicySource`]: refusals become the gRPC codes proxies act on, and
//! a watch follows the source's channel (a change is sent, a dropped sender ends the stream).

use super::{
    super::*,
    mapping::{server_policy, settings},
};
use crate::server::shutdown::Stopping;
use futures::StreamExt;
use linkerd2_proxy_api::inbound::{
    self as proto, inbound_server_policies_server::InboundServerPolicies,
};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use std::{collections::HashMap, time::Duration};
use tokio::sync::watch;
use tonic::{Code, Request};
use weft_policy_index::{InboundPolicy, LookupError};
use weft_policy_k8s_api::ProxyProtocol;

/// Ports the test serves, by (namespace, pod, port), and the refusals it makes.
#[derive(Debug, Default)]
struct FakePolicies {
    ports: Mutex<HashMap<(String, String, u16), watch::Sender<InboundPolicy>>>,
}

impl PolicySource for std::sync::Arc<FakePolicies> {
    fn pod_port_policy(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<watch::Receiver<InboundPolicy>, LookupError> {
        match pod {
            "unknown" => Err(LookupError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            }),
            "crowded" => Err(LookupError::TooManyUndeclaredPorts {
                namespace: namespace.into(),
                pod: pod.into(),
                port,
            }),
            _ => {
                let ports = self.ports.lock();
                let sender = ports
                    .get(&(namespace.to_string(), pod.to_string(), port))
                    .expect("the test serves only the ports it set up");
                Ok(sender.subscribe())
            }
        }
    }
}

fn service(source: std::sync::Arc<FakePolicies>) -> (InboundPolicyService, watch::Sender<bool>) {
    let (stop, stopping) = Stopping::new();
    let metrics = InboundPolicyMetrics::register(&mut Registry::default());
    (
        InboundPolicyService::new(source, settings(), stopping, metrics),
        stop,
    )
}

fn spec(workload: &str, port: u32) -> proto::PortSpec {
    proto::PortSpec {
        workload: workload.into(),
        port,
    }
}

#[tokio::test]
async fn refusals_become_the_codes_proxies_act_on() {
    let (service, _stop) = service(Default::default());
    for (workload, port, code) in [
        ("ns:unknown", 8080, Code::NotFound),
        ("ns:crowded", 9999, Code::ResourceExhausted),
        ("ns:web", 0, Code::InvalidArgument),
        ("ns:web", 70_000, Code::InvalidArgument),
        ("not a workload", 8080, Code::InvalidArgument),
    ] {
        let status = service
            .get_port(Request::new(spec(workload, port)))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{workload} {port}: {status}");
    }
}

#[tokio::test]
async fn a_watch_follows_the_source_and_ends_with_it() {
    let source = std::sync::Arc::new(FakePolicies::default());
    let (sender, _) = watch::channel(server_policy(ProxyProtocol::Http1, vec![]));
    source
        .ports
        .lock()
        .insert(("ns".into(), "web".into(), 8080), sender);
    let (service, _stop) = service(source.clone());

    let mut stream = service
        .watch_port(Request::new(spec("ns:web", 8080)))
        .await
        .expect("the port is served")
        .into_inner();
    let first = stream.next().await.expect("a first policy").expect("ok");
    assert!(matches!(
        first.protocol.and_then(|p| p.kind),
        Some(proto::proxy_protocol::Kind::Http1(_))
    ));

    let sender = source
        .ports
        .lock()
        .remove(&("ns".into(), "web".into(), 8080))
        .expect("set up above");
    sender.send_replace(server_policy(ProxyProtocol::Http2, vec![]));
    let changed = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the change is sent")
        .expect("the stream is open")
        .expect("ok");
    assert!(matches!(
        changed.protocol.and_then(|p| p.kind),
        Some(proto::proxy_protocol::Kind::Http2(_))
    ));

    drop(sender);
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends when the source drops the port");
    assert!(end.is_none(), "{end:?}");
}
