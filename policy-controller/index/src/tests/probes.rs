use super::*;
use k8s_openapi::{
    api::core::v1::{HTTPGetAction, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};

fn http_probe(port: IntOrString, path: Option<&str>) -> Option<Probe> {
    Some(Probe {
        http_get: Some(HTTPGetAction {
            port,
            path: path.map(str::to_string),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A pod whose container serves `http` (8080) and `admin` (9990), with a liveness probe on
/// `admin` by name and a readiness probe on 8080 by number.
fn probed_pod(readiness_path: &str) -> Pod {
    let mut pod = mk_pod(
        "ns",
        "p",
        &[("app", "web")],
        &[(Some("http"), 8080), (Some("admin"), 9990)],
    );
    let app = &mut pod.spec.as_mut().unwrap().containers[0];
    app.liveness_probe = http_probe(IntOrString::String("admin".into()), Some("/live"));
    app.readiness_probe = http_probe(IntOrString::Int(8080), Some(readiness_path));
    app.startup_probe = http_probe(IntOrString::Int(8080), None);
    pod
}

fn probes(rx: &watch::Receiver<InboundPolicy>) -> Vec<String> {
    rx.borrow().probe_paths.clone()
}

#[test]
fn probe_paths_by_port_number_and_name() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, probed_pod("/ready?verbose=1"));
    // The query is not part of the path; a probe without a path requests `/`.
    assert_eq!(probes(&watch(&index, "ns", "p", 8080)), ["/", "/ready"]);
    assert_eq!(probes(&watch(&index, "ns", "p", 9990)), ["/live"]);
    assert!(probes(&watch(&index, "ns", "p", 7000)).is_empty());
}

#[test]
fn probes_of_init_containers_count_and_unresolvable_ports_are_skipped() {
    let mut index = mk_index(DefaultPolicy::Deny);
    let mut pod = mk_pod("ns", "p", &[], &[(Some("http"), 8080)]);
    let spec = pod.spec.as_mut().unwrap();
    let mut sidecar = container("sidecar", &[(Some("metrics"), 4191)]);
    sidecar.startup_probe = http_probe(IntOrString::String("metrics".into()), Some("healthz"));
    // A name only another container declares: the kubelet cannot resolve it either.
    sidecar.liveness_probe = http_probe(IntOrString::String("http".into()), Some("/x"));
    spec.init_containers = Some(vec![sidecar]);
    apply_pod(&mut index, pod);
    assert_eq!(probes(&watch(&index, "ns", "p", 4191)), ["/healthz"]);
    assert!(probes(&watch(&index, "ns", "p", 8080)).is_empty());
}

#[test]
fn ports_described_by_a_server_carry_probe_paths_too() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, probed_pod("/ready"));
    apply_server(
        &mut index,
        mk_server("ns", "web", &[("app", "web")], json!("http"), "HTTP/1", 1),
    );
    let rx = watch(&index, "ns", "p", 8080);
    assert_eq!(server_of(&rx), named("web"));
    assert_eq!(probes(&rx), ["/", "/ready"]);
}

#[test]
fn a_probe_change_wakes_only_the_ports_it_touches() {
    let mut index = mk_index(DefaultPolicy::Deny);
    apply_pod(&mut index, probed_pod("/ready"));
    let mut http = watch(&index, "ns", "p", 8080);
    let mut admin = watch(&index, "ns", "p", 9990);
    http.mark_unchanged();
    admin.mark_unchanged();

    apply_pod(&mut index, probed_pod("/ready"));
    assert!(!http.has_changed().unwrap(), "same probes: no change");

    apply_pod(&mut index, probed_pod("/healthy"));
    assert!(http.has_changed().unwrap());
    assert_eq!(probes(&http), ["/", "/healthy"]);
    assert!(
        !admin.has_changed().unwrap(),
        "the other port's probes did not change"
    );
}
