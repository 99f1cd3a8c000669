//! The pure mapping: endpoints, updates and profiles, by table.

use super::fake::*;
use crate::destination::{
    endpoint::{tcp_address, weighted_addr, ENDPOINT_WEIGHT},
    mapping::{diff_updates, initial_update},
    profile::{parse_profile_path, target_profile, ProfilePath},
};
use linkerd2_proxy_api::{
    destination::{
        protocol_hint::Protocol, tls_identity::Strategy, update, DestinationProfile, Update,
        WeightedAddr,
    },
    net::{ip_address::Ip, IPv6},
};
use std::{collections::HashMap, net::SocketAddr};
use weft_endpoints_index::OutboundTarget;

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn hint(addr: &WeightedAddr) -> Option<&Protocol> {
    addr.protocol_hint.as_ref()?.protocol.as_ref()
}

#[test]
fn a_meshed_endpoint_is_dialed_with_its_identity_and_may_be_upgraded_to_http2() {
    let addr = weighted_addr(&meshed("10.1.2.3:8080", "ns", "web-0"));
    let id = identity("web", "ns");
    let tls = addr.tls_identity.as_ref().unwrap();
    assert_eq!(
        tls.strategy,
        Some(Strategy::DnsLikeIdentity(
            linkerd2_proxy_api::destination::tls_identity::DnsLikeIdentity { name: id.clone() }
        ))
    );
    assert_eq!(tls.server_name.as_ref().unwrap().name, id);
    assert!(matches!(hint(&addr), Some(Protocol::H2(_))));
    assert_eq!(addr.protocol_hint.as_ref().unwrap().opaque_transport, None);
    assert_eq!(addr.weight, ENDPOINT_WEIGHT);
    assert_eq!(
        addr.metric_labels,
        labels(&[("pod", "web-0"), ("serviceaccount", "web"), ("zone", "z1")])
    );
    assert_eq!(addr.authority_override, None);
}

#[test]
fn a_meshed_opaque_endpoint_is_reached_through_the_proxy_inbound_port() {
    let addr = weighted_addr(&weft_endpoints_index::Endpoint {
        opaque: true,
        ..meshed("10.1.2.3:5432", "ns", "db-0")
    });
    assert!(addr.tls_identity.is_some());
    assert!(matches!(hint(&addr), Some(Protocol::Opaque(_))));
    // The address stays the app's port; the client proxy dials the inbound port instead and
    // names 5432 in the transport header.
    assert_eq!(
        addr.addr,
        Some(tcp_address("10.1.2.3:5432".parse().unwrap()))
    );
    assert_eq!(
        addr.protocol_hint.as_ref().unwrap().opaque_transport,
        Some(
            linkerd2_proxy_api::destination::protocol_hint::OpaqueTransport { inbound_port: 4143 }
        )
    );
}

#[test]
fn an_unmeshed_endpoint_has_no_identity_and_no_hint() {
    for endpoint in [
        unmeshed("10.1.2.4:8080", "ns"),
        weft_endpoints_index::Endpoint {
            identity: None,
            opaque: true,
            ..meshed("10.1.2.5:8080", "ns", "plain-0")
        },
    ] {
        let addr = weighted_addr(&endpoint);
        assert_eq!(addr.tls_identity, None, "{endpoint:?}");
        assert_eq!(addr.protocol_hint, None, "{endpoint:?}");
    }
    assert!(weighted_addr(&unmeshed("10.1.2.4:8080", "ns"))
        .metric_labels
        .is_empty());
}

#[test]
fn addresses_are_encoded_as_the_proxy_decodes_them() {
    let v4 = tcp_address(addr("10.1.2.3:8080"));
    assert_eq!(v4.port, 8080);
    assert_eq!(v4.ip.unwrap().ip, Some(Ip::Ipv4(0x0A01_0203)));

    let v6 = tcp_address(addr("[2001:db8::a:1]:443"));
    assert_eq!(v6.port, 443);
    assert_eq!(
        v6.ip.unwrap().ip,
        Some(Ip::Ipv6(IPv6 {
            first: 0x2001_0db8_0000_0000,
            last: 0x0000_0000_000a_0001,
        }))
    );
    let back = SocketAddr::try_from(tcp_address(addr("[fd00::1:2]:9"))).unwrap();
    assert_eq!(back, addr("[fd00::1:2]:9"));
}

enum Expect {
    Add(&'static [&'static str]),
    Remove(&'static [&'static str]),
    NoEndpoints(bool),
}

fn check(updates: &[Update], expected: &[Expect], case: &str) {
    assert_eq!(updates.len(), expected.len(), "{case}: {updates:?}");
    for (update, expected) in updates.iter().zip(expected) {
        match (update.update.as_ref().unwrap(), expected) {
            (update::Update::Add(set), Expect::Add(addrs)) => {
                let got: Vec<_> = set
                    .addrs
                    .iter()
                    .map(|a| SocketAddr::try_from(a.addr.unwrap()).unwrap())
                    .collect();
                let want: Vec<_> = addrs.iter().map(|a| addr(a)).collect();
                assert_eq!(got, want, "{case}");
                assert_eq!(
                    set.metric_labels,
                    labels(&[("namespace", "ns"), ("service", "web")]),
                    "{case}"
                );
            }
            (update::Update::Remove(set), Expect::Remove(addrs)) => {
                let got: Vec<_> = set
                    .addrs
                    .iter()
                    .map(|a| SocketAddr::try_from(*a).unwrap())
                    .collect();
                let want: Vec<_> = addrs.iter().map(|a| addr(a)).collect();
                assert_eq!(got, want, "{case}");
            }
            (update::Update::NoEndpoints(none), Expect::NoEndpoints(exists)) => {
                assert_eq!(none.exists, *exists, "{case}");
            }
            (got, _) => panic!("{case}: unexpected {got:?}"),
        }
    }
}

#[test]
fn the_first_update_is_the_whole_state() {
    let web = service("ns", "web", 80);
    let a = meshed("10.0.0.1:8080", "ns", "web-0");
    let b = unmeshed("10.0.0.2:8080", "ns");
    for (case, state, expected) in [
        (
            "endpoints",
            set([a, b]),
            Expect::Add(&["10.0.0.1:8080", "10.0.0.2:8080"]),
        ),
        ("none ready", empty(true), Expect::NoEndpoints(true)),
        ("no such Service", empty(false), Expect::NoEndpoints(false)),
    ] {
        check(&[initial_update(&web, &state)], &[expected], case);
    }
}

#[test]
fn later_updates_are_differences() {
    let web = service("ns", "web", 80);
    let a = || meshed("10.0.0.1:8080", "ns", "web-0");
    let b = || meshed("10.0.0.2:8080", "ns", "web-1");
    let b_unmeshed = || weft_endpoints_index::Endpoint {
        identity: None,
        ..b()
    };
    let c = || unmeshed("10.0.0.3:8080", "ns");
    for (case, prev, next, expected) in [
        ("unchanged", set([a(), b()]), set([a(), b()]), vec![]),
        (
            "added",
            set([a()]),
            set([a(), b()]),
            vec![Expect::Add(&["10.0.0.2:8080"])],
        ),
        (
            "removed",
            set([a(), b()]),
            set([b()]),
            vec![Expect::Remove(&["10.0.0.1:8080"])],
        ),
        (
            "changed: added again with its new metadata",
            set([a(), b()]),
            set([a(), b_unmeshed()]),
            vec![Expect::Add(&["10.0.0.2:8080"])],
        ),
        (
            "replaced: the new one is added before the old one is removed",
            set([a(), b()]),
            set([b(), c()]),
            vec![
                Expect::Add(&["10.0.0.3:8080"]),
                Expect::Remove(&["10.0.0.1:8080"]),
            ],
        ),
        (
            "from none",
            empty(true),
            set([a()]),
            vec![Expect::Add(&["10.0.0.1:8080"])],
        ),
        (
            "the Service appears with endpoints",
            empty(false),
            set([a()]),
            vec![Expect::Add(&["10.0.0.1:8080"])],
        ),
        (
            "to none",
            set([a(), b()]),
            empty(true),
            vec![Expect::NoEndpoints(true)],
        ),
        (
            "the Service is deleted",
            set([a()]),
            empty(false),
            vec![Expect::NoEndpoints(false)],
        ),
        (
            "the Service is created without endpoints",
            empty(false),
            empty(true),
            vec![Expect::NoEndpoints(true)],
        ),
        (
            "the Service without endpoints is deleted",
            empty(true),
            empty(false),
            vec![Expect::NoEndpoints(false)],
        ),
        ("still none", empty(true), empty(true), vec![]),
        ("still no Service", empty(false), empty(false), vec![]),
    ] {
        check(&diff_updates(&web, &prev, &next), &expected, case);
    }
}

#[test]
fn profiles_by_target() {
    let pod = meshed("10.0.0.1:8080", "ns", "web-0");
    let opaque_pod = weft_endpoints_index::Endpoint {
        opaque: true,
        ..pod.clone()
    };
    for (case, target, expected) in [
        (
            "unknown",
            OutboundTarget::Unknown,
            DestinationProfile::default(),
        ),
        (
            "service",
            OutboundTarget::Service {
                service: service("ns", "web", 80),
                opaque: false,
            },
            DestinationProfile {
                fully_qualified_name: "web.ns.svc.cluster.local".into(),
                ..Default::default()
            },
        ),
        (
            "opaque service",
            OutboundTarget::Service {
                service: service("ns", "db", 5432),
                opaque: true,
            },
            DestinationProfile {
                fully_qualified_name: "db.ns.svc.cluster.local".into(),
                opaque_protocol: true,
                ..Default::default()
            },
        ),
        (
            "pod",
            OutboundTarget::Pod(pod.clone()),
            DestinationProfile {
                endpoint: Some(weighted_addr(&pod)),
                ..Default::default()
            },
        ),
        (
            "opaque pod",
            OutboundTarget::Pod(opaque_pod.clone()),
            DestinationProfile {
                opaque_protocol: true,
                endpoint: Some(weighted_addr(&opaque_pod)),
                ..Default::default()
            },
        ),
    ] {
        let profile = target_profile(&target, CLUSTER_DOMAIN);
        assert_eq!(profile, expected, "{case}");
        assert!(profile.routes.is_empty() && profile.dst_overrides.is_empty());
        assert_eq!(profile.retry_budget, None);
    }
}

#[test]
fn profile_paths() {
    for (path, expected) in [
        (
            "10.0.0.1:8080",
            Some(ProfilePath::Addr(addr("10.0.0.1:8080"))),
        ),
        (
            "[fd00::1]:80",
            Some(ProfilePath::Addr(addr("[fd00::1]:80"))),
        ),
        (
            "web.ns.svc.cluster.local:80",
            Some(ProfilePath::Service(service("ns", "web", 80))),
        ),
        ("10.0.0.1", None),
        ("example.com:80", None),
        ("web.ns.svc.cluster.local", None),
        ("", None),
    ] {
        assert_eq!(
            parse_profile_path(path, CLUSTER_DOMAIN).ok(),
            expected,
            "{path:?}"
        );
    }
}
