//! Pods written for Linkerd, applied unchanged, on the real node with real proxies: a namespace
//! annotated only `linkerd.io/inject: enabled`, and a server pod whose `config.linkerd.io/*`
//! annotations Weft must honour as Linkerd does.

use crate::{block_on, Harness};
use anyhow::{ensure, Result};
use weft_e2e::{
    mesh::{
        http_get_from, http_get_from_host, pid_of, pod_ip, refused, run_app, service_account,
        wait_for_answer,
    },
    node, resources,
};

pub const TESTS: &[(&str, crate::TestFn)] = &[(
    "linkerd::linkerd_annotations_mesh_and_configure_the_proxy",
    linkerd_annotations_mesh_and_configure_the_proxy,
)];

/// `config.linkerd.io/proxy-require-identity-inbound-ports: "8080"` makes the port admit only
/// meshed clients (the policy index turns the default `all-unauthenticated` into
/// `all-authenticated` there); `config.linkerd.io/skip-subnets` with the host's address lets the
/// host's connections bypass the proxy (proxy-init's `--subnets-to-ignore`), so the kubelet's
/// probes and the host's requests reach the app directly, while an unmeshed pod is refused.
fn linkerd_annotations_mesh_and_configure_the_proxy(h: &Harness) -> Result<()> {
    block_on(async {
        let client = h.cluster.client().await?;
        let ns = resources::namespace(&client, "linkerd", &[("linkerd.io/inject", "enabled")], &[])
            .await?;
        let plain = resources::namespace(&client, "linkerd-plain", &[], &[]).await?;
        for sa in ["web", "client"] {
            service_account(&client, &ns, sa).await?;
        }
        let host = format!("{}/32", node::HOST_POD_NETWORK_IP);
        let image = &h.images.test_app;
        let web = run_app(
            &h.cluster,
            &client,
            &ns,
            image,
            ("web", "web"),
            &[
                (
                    "config.linkerd.io/proxy-require-identity-inbound-ports",
                    "8080",
                ),
                ("config.linkerd.io/skip-subnets", &host),
            ],
        )
        .await?;
        resources::ensure_injected_natively(&web)?;
        let init_args = web
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == "weft-init"))
            .and_then(|c| c.args.clone())
            .unwrap_or_default();
        ensure!(
            init_args
                .windows(2)
                .any(|w| w[0] == "--subnets-to-ignore" && w[1] == host),
            "proxy-init must skip {host}: {init_args:?}"
        );
        let url = format!("http://{}:8080/", pod_ip(&web)?);

        let meshed = run_app(&h.cluster, &client, &ns, image, ("client", "client"), &[]).await?;
        let meshed_pid = pid_of(&h.cluster, &meshed, "app")?;
        let took = wait_for_answer(meshed_pid, &url, |a| a == Some(200), "web").await?;
        eprintln!("linkerd: a meshed client got 200 from the require-identity port after {took:?}");

        let unmeshed = run_app(
            &h.cluster,
            &client,
            &plain,
            image,
            ("plain", "default"),
            &[],
        )
        .await?;
        let answer = http_get_from(pid_of(&h.cluster, &unmeshed, "app")?, &url)?;
        ensure!(
            refused(answer),
            "an unmeshed client must be refused on a require-identity port, got {answer:?}"
        );
        eprintln!("linkerd: an unmeshed client was refused ({answer:?})");

        let answer = http_get_from_host(&url)?;
        ensure!(
            answer == Some(200),
            "the host, in skip-subnets, must reach the app past the proxy, got {answer:?}"
        );
        eprintln!("linkerd: the host (in skip-subnets) got {answer:?} past the proxy");

        let _ = resources::delete_namespace(&client, &ns).await;
        let _ = resources::delete_namespace(&client, &plain).await;
        Ok(())
    })
}
