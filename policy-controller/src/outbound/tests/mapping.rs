//! The pure mapping by table, and every policy checked against what the proxy requires.

use super::proxy_checks::check_policy;
use crate::{
    destination::{
        endpoint::weighted_addr,
        tests::fake::{addr, meshed, service, unmeshed, CLUSTER_DOMAIN},
    },
    outbound::{
        mapping::{outbound_policy, BALANCER_DECAY, QUEUE_CAPACITY},
        parse_target, TargetError, TargetSpec,
    },
};
use linkerd2_proxy_api::{
    destination::protocol_hint::Protocol,
    http_route::path_match,
    meta::{metadata, Metadata, Resource},
    net::TcpAddress,
    outbound::{
        backend, http_route, opaque_route, proxy_protocol::Kind, traffic_spec::Target, Backend,
        OutboundPolicy, TrafficSpec,
    },
};
use std::time::Duration;
use weft_endpoints_index::{Endpoint, OutboundTarget};

fn kind(policy: &OutboundPolicy) -> &Kind {
    policy.protocol.as_ref().unwrap().kind.as_ref().unwrap()
}

fn default_name(meta: &Option<Metadata>) -> &str {
    match meta.as_ref().unwrap().kind.as_ref().unwrap() {
        metadata::Kind::Default(name) => name,
        other => panic!("expected default metadata, got {other:?}"),
    }
}

fn opaque_backends(o: &linkerd2_proxy_api::outbound::proxy_protocol::Opaque) -> Vec<&Backend> {
    assert_eq!(o.routes.len(), 1);
    let route = &o.routes[0];
    assert_eq!(default_name(&route.metadata), "opaq");
    match route.rules[0]
        .backends
        .as_ref()
        .unwrap()
        .kind
        .as_ref()
        .unwrap()
    {
        opaque_route::distribution::Kind::FirstAvailable(f) => f
            .backends
            .iter()
            .map(|b| b.backend.as_ref().unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// The backends of every route of `policy`, HTTP/1, HTTP/2 and opaque.
fn route_backends(policy: &OutboundPolicy) -> Vec<&Backend> {
    match kind(policy) {
        Kind::Opaque(o) => opaque_backends(o),
        Kind::Detect(d) => {
            let mut backends = Vec::new();
            for routes in [
                &d.http1.as_ref().unwrap().routes,
                &d.http2.as_ref().unwrap().routes,
            ] {
                assert_eq!(routes.len(), 1);
                let route = &routes[0];
                assert_eq!(default_name(&route.metadata), "http");
                assert!(route.hosts.is_empty());
                assert_eq!(route.rules.len(), 1);
                let rule = &route.rules[0];
                let path = rule.matches[0].path.as_ref().unwrap();
                assert_eq!(path.kind, Some(path_match::Kind::Prefix("/".into())));
                match rule.backends.as_ref().unwrap().kind.as_ref().unwrap() {
                    http_route::distribution::Kind::FirstAvailable(f) => {
                        backends.extend(f.backends.iter().map(|b| b.backend.as_ref().unwrap()))
                    }
                    other => panic!("{other:?}"),
                }
            }
            backends.extend(opaque_backends(d.opaque.as_ref().unwrap()));
            backends
        }
        other => panic!("unexpected protocol {other:?}"),
    }
}

fn web_resource() -> Metadata {
    Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: "core".into(),
            kind: "Service".into(),
            name: "web".into(),
            namespace: "ns".into(),
            section: String::new(),
            port: 80,
        })),
    }
}

#[test]
fn a_service_port_balances_over_its_endpoints_behind_protocol_detection() {
    let target = OutboundTarget::Service {
        service: service("ns", "web", 80),
        opaque: false,
    };
    let policy = outbound_policy(&target, CLUSTER_DOMAIN).unwrap();
    assert_eq!(policy.metadata, Some(web_resource()));
    let Kind::Detect(detect) = kind(&policy) else {
        panic!("expected Detect, got {:?}", kind(&policy));
    };
    assert_eq!(
        detect.timeout,
        Some(Duration::from_secs(10).try_into().unwrap())
    );
    assert_eq!(detect.http1.as_ref().unwrap().failure_accrual, None);
    let backends = route_backends(&policy);
    assert_eq!(backends.len(), 3, "HTTP/1, HTTP/2 and opaque routes");
    for backend in backends {
        assert_eq!(backend.metadata, Some(web_resource()));
        let queue = backend.queue.as_ref().unwrap();
        assert_eq!(queue.capacity, QUEUE_CAPACITY);
        assert_eq!(
            queue.failfast_timeout,
            Some(Duration::from_secs(3).try_into().unwrap())
        );
        let Some(backend::Kind::Balancer(balancer)) = &backend.kind else {
            panic!("expected a balancer, got {:?}", backend.kind);
        };
        assert_eq!(
            balancer.discovery.as_ref().unwrap().kind,
            Some(backend::endpoint_discovery::Kind::Dst(
                backend::endpoint_discovery::DestinationGet {
                    path: "web.ns.svc.cluster.local:80".into()
                }
            ))
        );
        let Some(backend::balance_p2c::Load::PeakEwma(ewma)) = &balancer.load else {
            panic!("expected peak EWMA");
        };
        assert_eq!(
            ewma.default_rtt,
            Some(Duration::from_millis(30).try_into().unwrap())
        );
        assert_eq!(ewma.decay, Some(BALANCER_DECAY.try_into().unwrap()));
    }
    check_policy(&policy).unwrap();
}

#[test]
fn an_opaque_service_port_has_only_the_opaque_route() {
    let target = OutboundTarget::Service {
        service: service("ns", "web", 80),
        opaque: true,
    };
    let policy = outbound_policy(&target, CLUSTER_DOMAIN).unwrap();
    assert!(matches!(kind(&policy), Kind::Opaque(_)));
    let backends = route_backends(&policy);
    assert_eq!(backends.len(), 1);
    assert!(matches!(backends[0].kind, Some(backend::Kind::Balancer(_))));
    check_policy(&policy).unwrap();
}

#[test]
fn a_pod_port_forwards_to_the_pod_with_its_identity_when_meshed() {
    let opaque_pod = Endpoint {
        opaque: true,
        ..meshed("10.0.0.2:5432", "ns", "db-0")
    };
    for (case, endpoint, opaque) in [
        ("meshed", meshed("10.0.0.1:8080", "ns", "web-0"), false),
        ("unmeshed", unmeshed("10.0.0.3:8080", "ns"), false),
        ("meshed opaque", opaque_pod, true),
    ] {
        let policy =
            outbound_policy(&OutboundTarget::Pod(endpoint.clone()), CLUSTER_DOMAIN).unwrap();
        assert_eq!(default_name(&policy.metadata), "endpoint", "{case}");
        assert_eq!(matches!(kind(&policy), Kind::Opaque(_)), opaque, "{case}");
        for backend in route_backends(&policy) {
            assert_eq!(default_name(&backend.metadata), "endpoint", "{case}");
            let Some(backend::Kind::Forward(forward)) = &backend.kind else {
                panic!("{case}: expected Forward, got {:?}", backend.kind);
            };
            assert_eq!(*forward, weighted_addr(&endpoint), "{case}");
            assert_eq!(
                forward.tls_identity.is_some(),
                endpoint.identity.is_some(),
                "{case}"
            );
            let hint = forward
                .protocol_hint
                .as_ref()
                .and_then(|h| h.protocol.as_ref());
            match (&endpoint.identity, opaque) {
                (None, _) => assert_eq!(hint, None, "{case}"),
                (Some(_), false) => assert!(matches!(hint, Some(Protocol::H2(_))), "{case}"),
                (Some(_), true) => assert!(matches!(hint, Some(Protocol::Opaque(_))), "{case}"),
            }
        }
        check_policy(&policy).unwrap();
    }
}

#[test]
fn an_unknown_address_has_no_policy() {
    assert_eq!(
        outbound_policy(&OutboundTarget::Unknown, CLUSTER_DOMAIN),
        None
    );
}

#[test]
fn the_checks_catch_what_the_proxy_rejects() {
    let good = outbound_policy(
        &OutboundTarget::Service {
            service: service("ns", "web", 80),
            opaque: false,
        },
        CLUSTER_DOMAIN,
    )
    .unwrap();
    check_policy(&good).unwrap();
    let detect = |p: &mut OutboundPolicy| match p.protocol.as_mut().unwrap().kind.as_mut() {
        Some(Kind::Detect(d)) => d.clone(),
        _ => unreachable!(),
    };
    let set_detect =
        |p: &mut OutboundPolicy, d| p.protocol.as_mut().unwrap().kind = Some(Kind::Detect(d));
    let breakages: Vec<(&str, Breakage)> = vec![
        ("no metadata", Box::new(|p| p.metadata = None)),
        (
            "a resource without a name",
            Box::new(|p| {
                p.metadata = Some(Metadata {
                    kind: Some(metadata::Kind::Resource(Resource {
                        group: "core".into(),
                        kind: "Service".into(),
                        ..Default::default()
                    })),
                })
            }),
        ),
        (
            "no detect timeout",
            Box::new(move |p| {
                let mut d = detect(p);
                d.timeout = None;
                set_detect(p, d)
            }),
        ),
        (
            "two opaque routes",
            Box::new(move |p| {
                let mut d = detect(p);
                let o = d.opaque.as_mut().unwrap();
                o.routes.push(o.routes[0].clone());
                set_detect(p, d)
            }),
        ),
        (
            "an opaque route without rules",
            Box::new(move |p| {
                let mut d = detect(p);
                d.opaque.as_mut().unwrap().routes[0].rules.clear();
                set_detect(p, d)
            }),
        ),
        (
            "an HTTP rule without a distribution",
            Box::new(move |p| {
                let mut d = detect(p);
                d.http2.as_mut().unwrap().routes[0].rules[0].backends = None;
                set_detect(p, d)
            }),
        ),
        (
            "a backend without a queue",
            Box::new(move |p| {
                let mut d = detect(p);
                let rule = &mut d.http1.as_mut().unwrap().routes[0].rules[0];
                let Some(http_route::distribution::Kind::FirstAvailable(f)) =
                    rule.backends.as_mut().unwrap().kind.as_mut()
                else {
                    unreachable!()
                };
                f.backends[0].backend.as_mut().unwrap().queue = None;
                set_detect(p, d)
            }),
        ),
    ];
    for (case, breakage) in breakages {
        let mut broken = good.clone();
        breakage(&mut broken);
        assert!(
            check_policy(&broken).is_err(),
            "{case} must fail the checks"
        );
    }
}

/// A way to break a good policy.
type Breakage = Box<dyn Fn(&mut OutboundPolicy)>;

fn spec(target: Option<Target>) -> TrafficSpec {
    TrafficSpec {
        source_workload: "ns:client".into(),
        target,
    }
}

#[test]
fn targets() {
    let tcp = |s: &str| Some(Target::Addr(TcpAddress::from(addr(s))));
    let authority = |s: &str| Some(Target::Authority(s.into()));
    let invalid = |s: &str| Err(TargetError::Invalid(s.into()));
    for (case, target, expected) in [
        (
            "v4",
            tcp("10.0.0.1:80"),
            Ok(TargetSpec::Addr(addr("10.0.0.1:80"))),
        ),
        (
            "v6",
            tcp("[fd00::1]:80"),
            Ok(TargetSpec::Addr(addr("[fd00::1]:80"))),
        ),
        (
            "service",
            authority("web.ns.svc.cluster.local:80"),
            Ok(TargetSpec::Service(service("ns", "web", 80))),
        ),
        ("no target", None, invalid("the request names no target")),
        (
            "port 0",
            tcp("10.0.0.1:0"),
            invalid("port 0 is not a port number (1-65535)"),
        ),
        (
            "port too big",
            Some(Target::Addr(TcpAddress {
                port: 70_000,
                ..TcpAddress::from(addr("10.0.0.1:80"))
            })),
            invalid("port 70000 is not a port number (1-65535)"),
        ),
        (
            "no IP",
            Some(Target::Addr(TcpAddress { ip: None, port: 80 })),
            invalid("the target address has no IP"),
        ),
        (
            "not an authority",
            authority("web ns:80"),
            invalid("\"web ns:80\" is not an authority (host:port)"),
        ),
    ] {
        assert_eq!(
            parse_target(&spec(target), CLUSTER_DOMAIN),
            expected,
            "{case}"
        );
    }
    for name in ["example.com:443", "web.ns.svc.other.domain:80", "web:80"] {
        assert!(
            matches!(
                parse_target(&spec(authority(name)), CLUSTER_DOMAIN),
                Err(TargetError::NotAService(_))
            ),
            "{name}"
        );
    }
}
