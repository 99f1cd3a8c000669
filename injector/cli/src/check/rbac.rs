//! RBAC: the controller's ServiceAccount may get, list and watch what it indexes, and create
//! TokenReviews (the identity service checks proxies' tokens with them). Asked with a
//! SubjectAccessReview for the ServiceAccount's user (a SelfSubjectAccessReview would check the
//! person running `weft check` instead).

use super::{Check, Installation};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};

/// One permission the controller needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group {
            "" => write!(f, "{} {}", self.verb, self.resource),
            group => write!(f, "{} {}.{group}", self.verb, self.resource),
        }
    }
}

/// The Gateway API's group: the controller reads HTTPRoutes from it.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// What the controller watches, and the TokenReviews its identity service creates (the chart's
/// ClusterRole grants exactly this).
pub fn required() -> Vec<Access> {
    let policy = weft_policy_k8s_api::RESOURCES.map(|r| (weft_policy_k8s_api::GROUP, r));
    [
        ("", "pods"),
        ("", "namespaces"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    .into_iter()
    .chain(policy)
    .chain([(GATEWAY_GROUP, "httproutes")])
    .flat_map(|(group, resource)| {
        ["get", "list", "watch"].map(|verb| Access {
            group,
            resource,
            verb,
        })
    })
    .chain([Access {
        group: "authentication.k8s.io",
        resource: "tokenreviews",
        verb: "create",
    }])
    .collect()
}

/// The review asking whether the installation's ServiceAccount has `access` cluster-wide. The
/// groups are those of a ServiceAccount token, so bindings to them count as they would.
pub fn review(inst: &Installation, access: &Access) -> SubjectAccessReview {
    let namespace = &inst.namespace;
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!(
                "system:serviceaccount:{namespace}:{}",
                inst.service_account()
            )),
            groups: Some(vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_string(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(access.group.to_string()),
                resource: Some(access.resource.to_string()),
                verb: Some(access.verb.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// One line from the answers to [`review`] for every [`required`] access.
pub fn check(
    inst: &Installation,
    answers: &[(Access, Result<SubjectAccessReviewStatus, String>)],
) -> Check {
    let who = format!(
        "ServiceAccount {}/{}",
        inst.namespace,
        inst.service_account()
    );
    if let Some((access, Err(error))) = answers.iter().find(|(_, a)| a.is_err()) {
        return Check::fail(
            format!("cannot check the RBAC of {who} ({access}): {error}"),
            "run weft check as a user that may create subjectaccessreviews.authorization.k8s.io \
             (e.g. cluster-admin)",
        );
    }
    let denied: Vec<String> = answers
        .iter()
        .filter_map(|(access, answer)| match answer {
            Ok(status) if status.allowed => None,
            _ => Some(access.to_string()),
        })
        .collect();
    if answers.is_empty() {
        return Check::fail(format!("no RBAC answers for {who}"), "report this as a bug");
    }
    if !denied.is_empty() {
        return Check::fail(
            format!("{who} may not: {}", denied.join(", ")),
            format!(
                "the chart's ClusterRole and ClusterRoleBinding {} grant these: `{}` restores \
                 them (kubectl get clusterrolebinding {} -o yaml shows the binding)",
                inst.fullname,
                inst.helm_upgrade(),
                inst.fullname
            ),
        );
    }
    Check::ok(format!(
        "{who} may get, list and watch pods, namespaces, services, endpointslices, {} and \
         httproutes, and create tokenreviews",
        weft_policy_k8s_api::RESOURCES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    fn inst() -> Installation {
        Installation::new("weft", "weft", None)
    }

    fn status(allowed: bool) -> Result<SubjectAccessReviewStatus, String> {
        Ok(SubjectAccessReviewStatus {
            allowed,
            ..Default::default()
        })
    }

    #[test]
    fn reviews_ask_for_the_service_account() {
        let access = required();
        assert_eq!(access.len(), 31);
        assert_eq!(
            access[29].to_string(),
            "watch httproutes.gateway.networking.k8s.io"
        );
        assert_eq!(
            access[30].to_string(),
            "create tokenreviews.authentication.k8s.io"
        );
        let review = review(&inst(), &access[4]);
        assert_eq!(
            review.spec.user.as_deref(),
            Some("system:serviceaccount:weft:weft")
        );
        let attributes = review.spec.resource_attributes.unwrap_or_default();
        assert_eq!(attributes.resource.as_deref(), Some("namespaces"));
        assert_eq!(attributes.verb.as_deref(), Some("list"));
        assert_eq!(attributes.group.as_deref(), Some(""));
    }

    #[test]
    fn all_allowed_passes() {
        let answers: Vec<_> = required().into_iter().map(|a| (a, status(true))).collect();
        assert_eq!(check(&inst(), &answers).status, Status::Ok);
    }

    #[test]
    fn the_route_policy_resources_are_required() {
        let required = required();
        for (group, resource) in [
            ("policy.weft.dev", "authorizationpolicies"),
            ("policy.weft.dev", "meshtlsauthentications"),
            ("policy.weft.dev", "networkauthentications"),
            ("gateway.networking.k8s.io", "httproutes"),
        ] {
            let verbs: Vec<_> = required
                .iter()
                .filter(|a| a.group == group && a.resource == resource)
                .map(|a| a.verb)
                .collect();
            assert_eq!(verbs, ["get", "list", "watch"], "{resource}.{group}");
        }
        let answers: Vec<_> = required
            .into_iter()
            .map(|a| (a, status(a.resource != "httproutes" || a.verb != "watch")))
            .collect();
        assert_eq!(
            check(&inst(), &answers).message,
            "ServiceAccount weft/weft may not: watch httproutes.gateway.networking.k8s.io"
        );
    }

    #[test]
    fn denials_are_listed() {
        let answers: Vec<_> = required()
            .into_iter()
            .map(|a| (a, status(a.resource != "servers" || a.verb == "get")))
            .collect();
        let check = check(&inst(), &answers);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "ServiceAccount weft/weft may not: list servers.policy.weft.dev, watch \
             servers.policy.weft.dev"
        );
    }

    #[test]
    fn a_failed_review_fails() {
        let mut answers: Vec<_> = required().into_iter().map(|a| (a, status(true))).collect();
        answers[0].1 = Err("403 Forbidden".to_string());
        let check = check(&inst(), &answers);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.message.contains("get pods): 403 Forbidden"),
            "{}",
            check.message
        );
        assert!(check
            .fix
            .unwrap_or_default()
            .contains("subjectaccessreviews"));
        assert_eq!(super::check(&inst(), &[]).status, Status::Fail);
    }
}
