#![allow(clippy::unwrap_used)]
use super::*;
use linkerd2_proxy_api::{
    destination::{
        protocol_hint::{self, OpaqueTransport},
        tls_identity::DnsLikeIdentity,
        AddrSet, NoEndpoints, ProtocolHint, TlsIdentity, WeightedAddrSet,
    },
    net::TcpAddress,
};
use std::collections::HashMap;

const SVC: &str = "web.emojivoto";

fn tcp(addr: &str) -> TcpAddress {
    TcpAddress::from(addr.parse::<SocketAddr>().unwrap())
}

fn meshed(addr: &str, pod: &str) -> WeightedAddr {
    WeightedAddr {
        addr: Some(tcp(addr)),
        weight: 10000,
        metric_labels: HashMap::from([
            ("pod".into(), pod.into()),
            ("serviceaccount".into(), "web".into()),
            ("zone".into(), "z1".into()),
        ]),
        tls_identity: Some(TlsIdentity {
            server_name: None,
            strategy: Some(Strategy::DnsLikeIdentity(DnsLikeIdentity {
                name: "web.emojivoto.serviceaccount.identity.weft.cluster.local".into(),
            })),
        }),
        protocol_hint: Some(ProtocolHint {
            opaque_transport: None,
            protocol: Some(Protocol::H2(protocol_hint::H2 {})),
        }),
        ..Default::default()
    }
}

fn plain(addr: &str) -> WeightedAddr {
    WeightedAddr {
        addr: Some(tcp(addr)),
        weight: 10000,
        ..Default::default()
    }
}

fn add(addrs: Vec<WeightedAddr>) -> Update {
    Update {
        update: Some(update::Update::Add(WeightedAddrSet {
            addrs,
            metric_labels: HashMap::new(),
        })),
    }
}

fn remove(addrs: &[&str]) -> Update {
    Update {
        update: Some(update::Update::Remove(AddrSet {
            addrs: addrs.iter().map(|a| tcp(a)).collect(),
        })),
    }
}

fn none(exists: bool) -> Update {
    Update {
        update: Some(update::Update::NoEndpoints(NoEndpoints { exists })),
    }
}

#[test]
fn meshed_endpoints_sorted_by_address() {
    let state = first(
        add(vec![
            meshed("10.0.0.12:8080", "web-2"),
            meshed("10.0.0.9:8080", "web-1"),
        ]),
        SVC,
        80,
    )
    .unwrap();
    assert_eq!(
        state.table(SVC, 80),
        "\
ADDRESS         POD    SERVICEACCOUNT  IDENTITY                                                  HINT
10.0.0.9:8080   web-1  web             web.emojivoto.serviceaccount.identity.weft.cluster.local  h2
10.0.0.12:8080  web-2  web             web.emojivoto.serviceaccount.identity.weft.cluster.local  h2
"
    );
}

#[test]
fn unmeshed_and_ipv6_endpoints() {
    let mut opaque = meshed("[fd00::2]:6379", "redis-0");
    opaque.protocol_hint = Some(ProtocolHint {
        opaque_transport: Some(OpaqueTransport { inbound_port: 4143 }),
        protocol: Some(Protocol::Opaque(protocol_hint::Opaque {})),
    });
    opaque
        .metric_labels
        .insert("serviceaccount".into(), String::new());
    let state = first(add(vec![opaque, plain("[fd00::1]:6379")]), SVC, 6379).unwrap();
    let table = state.table(SVC, 6379);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ADDRESS         POD      SERVICEACCOUNT  IDENTITY"));
    assert_eq!(
        lines[1],
        "[fd00::1]:6379  -        -               - (not meshed)                                            -"
    );
    assert_eq!(
        lines[2],
        "[fd00::2]:6379  redis-0  -               web.emojivoto.serviceaccount.identity.weft.cluster.local  opaque (transport port 4143)"
    );
}

#[test]
fn no_endpoints_says_whether_the_service_exists() {
    assert_eq!(
        first(none(true), SVC, 80).unwrap().table(SVC, 80),
        "no endpoints (the Service web.emojivoto exists)\n"
    );
    assert_eq!(
        first(none(false), SVC, 80).unwrap().table(SVC, 80),
        "Service web.emojivoto has no port 80 or does not exist\n"
    );
    // An empty Add: the Service exists, nothing is ready.
    assert_eq!(
        first(add(vec![]), SVC, 80).unwrap().table(SVC, 80),
        "no endpoints (the Service web.emojivoto exists)\n"
    );
}

#[test]
fn diffs_change_the_state_and_print_one_line_each() {
    let mut state = first(add(vec![meshed("10.0.0.1:80", "web-1")]), SVC, 80).unwrap();

    // New and changed endpoints are `+`; an unchanged one prints nothing.
    let lines = state
        .apply(
            add(vec![plain("10.0.0.2:80"), meshed("10.0.0.1:80", "web-1")]),
            SVC,
            80,
        )
        .unwrap();
    assert_eq!(lines, ["+ 10.0.0.2:80  -  -  - (not meshed)  -"]);
    let lines = state
        .apply(add(vec![meshed("10.0.0.2:80", "web-2")]), SVC, 80)
        .unwrap();
    assert_eq!(
        lines,
        ["+ 10.0.0.2:80  web-2  web  web.emojivoto.serviceaccount.identity.weft.cluster.local  h2"]
    );

    // Removals of known endpoints are `-`; unknown ones are ignored.
    let lines = state
        .apply(remove(&["10.0.0.9:80", "10.0.0.1:80"]), SVC, 80)
        .unwrap();
    assert_eq!(lines, ["- 10.0.0.1:80"]);
    assert!(state.table(SVC, 80).contains("10.0.0.2:80"));
    assert!(!state.table(SVC, 80).contains("10.0.0.1:80"));

    // NoEndpoints removes the rest and says so; repeated, it prints nothing.
    let lines = state.apply(none(true), SVC, 80).unwrap();
    assert_eq!(
        lines,
        [
            "- 10.0.0.2:80",
            "no endpoints (the Service web.emojivoto exists)"
        ]
    );
    assert!(state.apply(none(true), SVC, 80).unwrap().is_empty());
    assert_eq!(
        state.apply(none(false), SVC, 80).unwrap(),
        ["Service web.emojivoto has no port 80 or does not exist"]
    );
    assert!(state
        .apply(remove(&["10.0.0.2:80"]), SVC, 80)
        .unwrap()
        .is_empty());

    // Endpoints again.
    let lines = state
        .apply(add(vec![plain("10.0.0.3:80")]), SVC, 80)
        .unwrap();
    assert_eq!(lines, ["+ 10.0.0.3:80  -  -  - (not meshed)  -"]);
    assert_eq!(state.table(SVC, 80).lines().count(), 2);
}

#[test]
fn malformed_updates_are_errors() {
    assert_eq!(
        first(Update { update: None }, SVC, 80),
        Err(InvalidUpdate::Empty)
    );
    let mut no_addr = plain("10.0.0.1:80");
    no_addr.addr = None;
    assert_eq!(
        first(add(vec![no_addr]), SVC, 80),
        Err(InvalidUpdate::Address)
    );
    let mut bad_port = plain("10.0.0.1:80");
    bad_port.addr = Some(TcpAddress {
        port: 70000,
        ..tcp("10.0.0.1:80")
    });
    assert_eq!(
        first(add(vec![bad_port]), SVC, 80),
        Err(InvalidUpdate::Address)
    );
}
