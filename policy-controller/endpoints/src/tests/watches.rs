//! Watch lifetimes: shared while someone listens, dropped once nobody does.

use super::*;

#[test]
fn lookups_share_one_watch() {
    let index = mk_index();
    let _a = index.service_endpoints(&sp("ns", "web", 80));
    let _b = index.service_endpoints(&sp("ns", "web", 80));
    let _c = index.service_endpoints(&sp("ns", "web", 81));
    let _d = index.outbound_target(addr("10.0.0.1:80"));
    let _e = index.outbound_target(addr("10.0.0.1:80"));
    assert_eq!(index.metrics().watched_service_ports(), 2);
    assert_eq!(index.metrics().watched_addresses(), 1);
}

#[test]
fn watches_without_receivers_are_dropped_on_update() {
    let mut index = mk_index();
    let kept = index.service_endpoints(&sp("ns", "web", 80));
    drop(index.service_endpoints(&sp("ns", "web", 81)));
    drop(index.outbound_target(addr("10.96.0.1:80")));
    assert_eq!(index.metrics().watched_service_ports(), 2);
    assert_eq!(index.metrics().watched_addresses(), 1);

    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80), ("", 81, 81)]),
    );
    assert_eq!(index.metrics().watched_service_ports(), 1);
    assert_eq!(index.metrics().watched_addresses(), 0);
    assert!(kept.has_changed().unwrap());
    assert!(kept.borrow().service_exists);
}

#[test]
fn one_off_lookups_do_not_pile_up() {
    let index = mk_index();
    let kept = index.outbound_target(addr("10.0.0.1:80"));
    for i in 0..5_000u16 {
        drop(index.outbound_target(SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 80))));
        drop(index.service_endpoints(&sp("ns", &format!("svc-{i}"), 80)));
    }
    // Sweeps run whenever the count doubles: at most 64 watches (or twice those kept) remain.
    assert!(index.metrics().watched_addresses() <= 64);
    assert!(index.metrics().watched_service_ports() <= 64);
    assert!(!kept.has_changed().unwrap());
    assert_eq!(*kept.borrow(), OutboundTarget::Unknown);
}

#[test]
fn sweeps_keep_watches_with_receivers() {
    let mut index = mk_index();
    let kept = index.service_endpoints(&sp("ns", "web", 80));
    let kept_target = index.outbound_target(addr("10.96.0.1:80"));
    drop(index.service_endpoints(&sp("ns", "api", 80)));
    index.sweep_watches();
    assert_eq!(index.metrics().watched_service_ports(), 1);
    assert_eq!(index.metrics().watched_addresses(), 1);

    apply_svc(
        &mut index,
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    assert!(kept.borrow().service_exists);
    assert!(matches!(
        *kept_target.borrow(),
        OutboundTarget::Service { .. }
    ));
}

#[test]
fn a_shared_index_serves_lookups_under_a_read_lock() {
    let index = EndpointsIndex::shared(
        cluster(),
        EndpointsIndexMetrics::register(&mut Registry::default()),
    );
    let rx = index.read().service_endpoints(&sp("ns", "web", 80));
    apply_svc(
        &mut index.write(),
        mk_svc("ns", "web", "10.96.0.1", &[("", 80, 80)]),
    );
    assert!(rx.borrow().service_exists);
    assert_eq!(index.read().cluster(), &cluster());
}
