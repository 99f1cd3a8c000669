//! Opaque ports between meshed pods, authorized by identity: real proxies on the node.
//!
//! linkerd2-proxy does not look for TLS on an opaque inbound port: a TLS connection straight to
//! the app's port is `tls=None(PortSkipped)` and carries no client identity. A meshed client must
//! reach an opaque port through the server proxy's inbound port (4143) with mutual TLS and a
//! transport header naming the app's port, which it does only when the Destination API gives the
//! endpoint the `opaque_transport` hint. This test is the judge of that path: the server's proxy
//! must see the allowed client's identity over TLS on the opaque port, and refuse another
//! identity and an unmeshed client.
//!
//! The app is the test app's HTTP server, its port marked opaque: HTTP is carried as opaque TCP,
//! so an answer proves the bytes went through both proxies unchanged.

use crate::{block_on, Harness};
use anyhow::{ensure, Result};
use serde_json::json;
use std::time::Duration;
use weft_e2e::{
    mesh::{
        app_pod, authorize, create_server, create_service, http_get_from, pid_of, pod_ip,
        proxy_metrics, refused, run_app, run_pod, service, service_account, wait_for_answer,
    },
    node, resources,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[
    (
        "opaque::meshed_clients_reach_an_opaque_port_over_mtls_authorized_by_identity",
        meshed_clients_reach_an_opaque_port_over_mtls_authorized_by_identity,
    ),
    (
        "opaque::a_port_only_a_server_makes_opaque_is_reached_over_mtls_too",
        a_port_only_a_server_makes_opaque_is_reached_over_mtls_too,
    ),
    (
        "opaque::an_annotated_port_without_a_server_is_not_held_by_protocol_detection",
        an_annotated_port_without_a_server_is_not_held_by_protocol_detection,
    ),
];

/// The lines of `metrics` named `name` (with labels) that contain every one of `labels`.
fn lines_with<'a>(metrics: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    let prefix = format!("{name}{{");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .collect()
}

/// The `inbound_tcp_authz_*` lines of `metrics`, for a failing test's message.
fn tcp_authz(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.starts_with("inbound_tcp_authz"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The server's app port is opaque by the pod's `config.weft.dev/opaque-ports` annotation (so
/// its proxy was injected with it) and by its Server.
fn meshed_clients_reach_an_opaque_port_over_mtls_authorized_by_identity(h: &Harness) -> Result<()> {
    block_on(opaque_port_authorized_by_identity(
        h,
        "opaque",
        &[("config.weft.dev/opaque-ports", "8080")],
    ))
}

/// The server's app port is opaque only by its Server (`proxyProtocol: opaque`), created after
/// the pod, with no opaque-ports annotation on the pod: the clients must still be told to use
/// the opaque transport, as Linkerd's destination controller tells them.
fn a_port_only_a_server_makes_opaque_is_reached_over_mtls_too(h: &Harness) -> Result<()> {
    block_on(opaque_port_authorized_by_identity(h, "opaque-srv", &[]))
}

/// The scenario of both tests, in namespaces `<prefix>` (meshed) and `<prefix>-plain`, with the
/// server pod annotated with `web_annotations`.
async fn opaque_port_authorized_by_identity(
    h: &Harness,
    prefix: &str,
    web_annotations: &[(&str, &str)],
) -> Result<()> {
    let client = h.cluster.client().await?;
    let ns = resources::namespace(&client, prefix, &[("weft.dev/inject", "enabled")], &[]).await?;
    let plain = resources::namespace(&client, &format!("{prefix}-plain"), &[], &[]).await?;
    for sa in ["web", "client", "other"] {
        service_account(&client, &ns, sa).await?;
    }
    // The server: its app port (8080, `http`) opaque (by annotation or by the Server below),
    // so its proxy skips protocol and TLS detection there; the Service's port 80 opaque
    // too, so clients calling the Service do not detect HTTP either.
    let image = &h.images.test_app;
    let web = run_app(
        &h.cluster,
        &client,
        &ns,
        image,
        ("web", "web"),
        web_annotations,
    )
    .await?;
    let mut web_service = service("web", 80);
    web_service.metadata.annotations =
        Some(resources::to_map(&[("config.weft.dev/opaque-ports", "80")]));
    let service_ip = create_service(&client, &ns, &web_service).await?;
    let web_ip = pod_ip(&web)?;

    // An opaque Server on that port; TCP connections authorized for the `client` service
    // account (decided on the identity of the client's certificate) and for the host, whose
    // kubelet probes the app (an opaque port has no probe routes).
    create_server(
        &client,
        &ns,
        "web-tcp",
        ("web", json!("http")),
        Some("opaque"),
    )
    .await?;
    let client_sa = json!({"meshTLS": {"serviceAccounts": [{"name": "client"}]}});
    authorize(&client, &ns, "client-only", "web-tcp", client_sa).await?;
    let host = format!("{}/32", node::HOST_POD_NETWORK_IP);
    let kubelet = json!({"unauthenticated": true, "networks": [{"cidr": host}]});
    authorize(&client, &ns, "kubelet", "web-tcp", kubelet).await?;

    let mut pids = Vec::new();
    for (namespace, name, sa) in [
        (&ns, "client", "client"),
        (&ns, "other", "other"),
        (&plain, "plain", "default"),
    ] {
        let pod = run_app(&h.cluster, &client, namespace, image, (name, sa), &[]).await?;
        pids.push(pid_of(&h.cluster, &pod, "app")?);
    }
    let [client_pid, other_pid, plain_pid] = pids[..] else {
        unreachable!("three clients were started");
    };

    // The allowed identity, through the Service (OutboundPolicies → Destination.Get) and
    // straight to the pod's address (a pod target forwarded with its endpoint).
    let by_service = format!("http://{service_ip}/");
    let by_pod = format!("http://{web_ip}:8080/");
    for (what, url) in [("the Service", &by_service), ("the pod", &by_pod)] {
        let took = wait_for_answer(client_pid, url, |a| a == Some(200), what).await?;
        eprintln!("{prefix}: the client's service account reached {what} ({url}) after {took:?}");
    }
    for (what, pid) in [
        ("another service account", other_pid),
        ("an unmeshed client", plain_pid),
    ] {
        for url in [&by_service, &by_pod] {
            let answer = http_get_from(pid, url)?;
            ensure!(
                refused(answer),
                "{what} must be refused on the opaque port ({url}), got {answer:?}"
            );
        }
    }

    // The server proxy's own metrics: the allowed connections arrived over mutual TLS with
    // the client's identity and were authorized by `client-only`; the other identity's were
    // denied with its identity; the unmeshed client's were denied without TLS.
    let client_id = format!("client.{ns}.serviceaccount.identity.weft.cluster.local");
    let other_id = format!("other.{ns}.serviceaccount.identity.weft.cluster.local");
    let metrics = node::wait_for(
        "the web proxy's metrics",
        Duration::from_secs(10),
        || async { Ok(proxy_metrics(&web_ip).ok()) },
    )
    .await?;
    let allowed = lines_with(
        &metrics,
        "inbound_tcp_authz_allow_total",
        &[
            "tls=\"true\"",
            &format!("client_id=\"{client_id}\""),
            "srv_name=\"web-tcp\"",
            "authz_name=\"client-only\"",
        ],
    );
    ensure!(
        !allowed.is_empty(),
        "the server proxy authorized no connection of {client_id} over TLS by client-only:\n{}",
        tcp_authz(&metrics)
    );
    eprintln!("{prefix}: server proxy: {}", allowed[0]);
    let denied_other = lines_with(
        &metrics,
        "inbound_tcp_authz_deny_total",
        &[
            "tls=\"true\"",
            &format!("client_id=\"{other_id}\""),
            "srv_name=\"web-tcp\"",
        ],
    );
    ensure!(
        !denied_other.is_empty(),
        "the server proxy denied no TLS connection of {other_id} on web-tcp:\n{}",
        tcp_authz(&metrics)
    );
    eprintln!("{prefix}: server proxy: {}", denied_other[0]);
    let denied_plain = lines_with(
        &metrics,
        "inbound_tcp_authz_deny_total",
        &["tls=\"no_identity\"", "srv_name=\"web-tcp\""],
    );
    ensure!(
        !denied_plain.is_empty(),
        "the server proxy denied no connection without TLS on web-tcp:\n{}",
        tcp_authz(&metrics)
    );
    eprintln!("{prefix}: server proxy: {}", denied_plain[0]);

    // `weft endpoints` shows the hint the client proxies act on.
    let weft = weft_e2e::weft_cli::build()?;
    let kubeconfig = format!("--kubeconfig={}", h.cluster.kubeconfig.display());
    let shown = weft_e2e::weft_cli::endpoints(&weft, &[&format!("web.{ns}:80"), &kubeconfig])?;
    ensure!(
        shown.code == Some(0)
            && shown.stdout.contains(&format!("{web_ip}:8080"))
            && shown.stdout.contains("opaque (transport port 4143)"),
        "weft endpoints must show {web_ip}:8080 reached through the inbound port 4143 (exit {:?}):\n{}{}",
        shown.code,
        shown.stdout,
        shown.stderr
    );

    let _ = resources::delete_namespace(&client, &ns).await;
    let _ = resources::delete_namespace(&client, &plain).await;
    Ok(())
}

/// What an unmeshed client (the host) reads within `within` from `ip:8080` while sending
/// nothing: a server-speaks-first protocol's greeting, or nothing.
fn greeting_from_host(ip: &str, within: Duration) -> Result<String> {
    let script = format!("sleep {} | busybox nc {ip} 8080", within.as_secs());
    let output = std::process::Command::new("timeout")
        .arg(within.as_secs().to_string())
        .args(["sh", "-c", &script])
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A server that speaks first (it greets, then closes), on a port no `Server` describes. With
/// the pod's `config.weft.dev/opaque-ports` listing the port, its default policy is opaque, as
/// in Linkerd: an unmeshed client that sends nothing gets the greeting at once. Without the
/// annotation the proxy waits for the client's first bytes to detect the protocol (10 s), so
/// the same client gets nothing in 3 s; before the policy index served annotated default ports
/// as opaque, both pods behaved like that second one.
fn an_annotated_port_without_a_server_is_not_held_by_protocol_detection(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(
            &client,
            "opaque-default",
            &[("weft.dev/inject", "enabled")],
            &[],
        )
        .await?;
        service_account(&client, &ns, "greeter").await?;
        let mut ips = Vec::new();
        for (name, annotations) in [
            ("opaque", &[("config.weft.dev/opaque-ports", "8080")][..]),
            ("detected", &[][..]),
        ] {
            let mut pod = app_pod(name, &h.images.test_app, "greeter", annotations);
            let app = &mut pod.spec.as_mut().expect("app_pod has a spec").containers[0];
            app.readiness_probe = None;
            app.command = Some(
                [
                    "busybox", "nc", "-ll", "-p", "8080", "-e", "busybox", "echo", "hello",
                ]
                .map(String::from)
                .to_vec(),
            );
            let pod = run_pod(&h.cluster, &client, &ns, &pod).await?;
            ips.push(pod_ip(&pod)?);
        }
        let within = Duration::from_secs(3);
        let opaque = greeting_from_host(&ips[0], within)?;
        ensure!(
            opaque == "hello",
            "the annotated port must be opaque: the greeting must come at once, got {opaque:?}"
        );
        let detected = greeting_from_host(&ips[1], within)?;
        ensure!(
            detected.is_empty(),
            "without the annotation the proxy holds the connection to detect its protocol, \
             so nothing comes in {within:?}; got {detected:?}"
        );
        eprintln!("opaque-default: the annotated port greeted at once; the detected one said nothing in {within:?}");
        let _ = resources::delete_namespace(&client, &ns).await;
        Ok(())
    })
}
