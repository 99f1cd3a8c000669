//! The controller's Deployment: it exists, is Available, and all its replicas are ready.

use super::{Check, Fetched, Installation};
use k8s_openapi::api::apps::v1::Deployment;

pub fn check(inst: &Installation, deployment: &Fetched<Deployment>) -> Check {
    let name = format!("Deployment {}/{}", inst.namespace, inst.deployment());
    let debug = format!(
        "kubectl -n {ns} describe deployment {d}; kubectl -n {ns} logs deployment/{d}",
        ns = inst.namespace,
        d = inst.deployment()
    );
    let deployment = match deployment {
        Fetched::Found(deployment) => deployment,
        Fetched::NotFound => {
            return Check::fail(
                format!("{name} (the controller) does not exist"),
                format!(
                    "{} installs it (or pass the --namespace and --release of your installation)",
                    inst.helm_upgrade()
                ),
            )
        }
        Fetched::Failed(error) => {
            return Check::fail(
                format!("cannot read {name}: {error}"),
                format!(
                    "run weft check as a user that may get deployments in namespace {}",
                    inst.namespace
                ),
            )
        }
    };
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.as_ref();
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let available = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Available");
    match available {
        Some(c) if c.status == "True" => {}
        Some(c) => {
            let why = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            return Check::fail(format!("{name} is not Available ({why})"), debug);
        }
        None => {
            return Check::fail(
                format!("{name} is not Available (it reports no Available condition yet)"),
                debug,
            )
        }
    }
    if ready < desired {
        return Check::fail(
            format!("{name}: only {ready} of {desired} replicas are ready"),
            debug,
        );
    }
    Check::ok(format!(
        "{name} is Available, {ready}/{desired} replicas ready"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::check::Status;

    fn deployment(replicas: i32, ready: i32, available: &str) -> Fetched<Deployment> {
        Fetched::Found(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "weft", "namespace": "weft"},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": "weft"}},
                    "template": {"spec": {"containers": []}},
                },
                "status": {
                    "readyReplicas": ready,
                    "conditions": [{
                        "type": "Available",
                        "status": available,
                        "reason": "MinimumReplicasUnavailable",
                        "message": "Deployment does not have minimum availability.",
                    }],
                },
            }))
            .unwrap(),
        )
    }

    fn inst() -> Installation {
        Installation::new("weft", "weft", None)
    }

    #[test]
    fn available_and_ready() {
        assert_eq!(
            check(&inst(), &deployment(3, 3, "True")),
            Check::ok("Deployment weft/weft is Available, 3/3 replicas ready")
        );
    }

    #[test]
    fn unavailable_or_not_all_ready_fails() {
        let unavailable = check(&inst(), &deployment(1, 0, "False"));
        assert_eq!(unavailable.status, Status::Fail);
        assert_eq!(
            unavailable.message,
            "Deployment weft/weft is not Available (MinimumReplicasUnavailable: Deployment does \
             not have minimum availability.)"
        );
        assert!(unavailable
            .fix
            .unwrap()
            .contains("kubectl -n weft logs deployment/weft"));

        let partly = check(&inst(), &deployment(3, 2, "True"));
        assert_eq!(partly.status, Status::Fail);
        assert_eq!(
            partly.message,
            "Deployment weft/weft: only 2 of 3 replicas are ready"
        );
    }

    #[test]
    fn missing_deployment_fails() {
        let missing = check(&inst(), &Fetched::NotFound);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.message.contains("does not exist"));
    }
}
