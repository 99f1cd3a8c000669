//! `Destination.Get` paths.

use super::*;

#[test]
fn authorities() {
    let ok = [
        ("web.ns.svc.cluster.local:80", "ns", "web", 80),
        ("web.ns.svc.cluster.local.:8080", "ns", "web", 8080),
        ("web.ns.svc:65535", "ns", "web", 65535),
        ("web.ns.svc.:1", "ns", "web", 1),
        ("Web.NS.SVC.Cluster.Local:80", "ns", "web", 80),
        (
            "my-web-1.ns-2.svc.cluster.local:443",
            "ns-2",
            "my-web-1",
            443,
        ),
    ];
    for (path, ns, name, port) in ok {
        assert_eq!(
            parse_authority(path, "cluster.local"),
            Ok(sp(ns, name, port)),
            "{path}"
        );
    }
    assert_eq!(
        parse_authority("web.ns.svc.example.org:80", "Example.Org"),
        Ok(sp("ns", "web", 80))
    );

    let bad = [
        ("web.ns.svc.cluster.local", "has no port"),
        ("web.ns.svc.cluster.local:", "has no port"),
        ("web.ns.svc.cluster.local:0", "has a port that is not a number from 1 to 65535"),
        ("web.ns.svc.cluster.local:65536", "has a port that is not a number from 1 to 65535"),
        ("web.ns.svc.cluster.local:+80", "has a port that is not a number from 1 to 65535"),
        ("web.ns.svc.cluster.local:http", "has a port that is not a number from 1 to 65535"),
        ("web.ns.svc.other.domain:80", "is not a name under .svc.<cluster-domain>"),
        ("web.ns:80", "is not a name under .svc.<cluster-domain>"),
        ("10.96.0.1:80", "is not a name under .svc.<cluster-domain>"),
        ("web.ns.cluster.local:80", "is not a name under .svc.<cluster-domain>"),
        ("ns.svc.cluster.local:80", "names no namespace"),
        (".ns.svc.cluster.local:80", "has an empty Service or namespace name"),
        ("web..svc.cluster.local:80", "has an empty Service or namespace name"),
        ("svc.cluster.local:80", "is not a name under .svc.<cluster-domain>"),
        (
            "pod-0.web.ns.svc.cluster.local:80",
            "has labels before <service>.<namespace> (pod names of headless Services are not supported)",
        ),
        ("web_1.ns.svc.cluster.local:80", "has a Service or namespace name that is not a DNS label"),
        ("-web.ns.svc.cluster.local:80", "has a Service or namespace name that is not a DNS label"),
        ("web.ns-.svc:80", "has a Service or namespace name that is not a DNS label"),
    ];
    for (path, reason) in bad {
        let err = parse_authority(path, "cluster.local").unwrap_err();
        assert_eq!(err.reason, reason, "{path}");
        assert_eq!(err.path, path);
    }
    let long = format!("{}.ns.svc:80", "a".repeat(64));
    assert_eq!(
        parse_authority(&long, "cluster.local").unwrap_err().reason,
        "has a Service or namespace name that is not a DNS label"
    );
    // Round trip with the authority proxies are given.
    let port = sp("ns", "web", 80);
    assert_eq!(
        parse_authority(&port.authority("cluster.local"), "cluster.local"),
        Ok(port)
    );
}
