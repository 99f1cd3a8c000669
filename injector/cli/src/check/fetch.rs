//! The I/O of `weft check`: connects with the kubeconfig, reads the installation's objects, and
//! hands them to the pure checks. Every request's failure becomes a failed check line, never an
//! early exit (except when the API server cannot be reached at all).

use super::{crds, rbac, webhooks, workload, Check, Fetched, Group};
use super::{CheckArgs, ClusterArgs};
use k8s_openapi::{
    api::{
        admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
        apps::v1::Deployment,
        authorization::v1::SubjectAccessReview,
        core::v1::Secret,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{Api, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    Config,
};

/// Runs every check against the cluster `args` name.
pub async fn run(args: &CheckArgs) -> Vec<Group> {
    let inst = args.cluster.installation();
    let (client, mut groups) = match connected(&args.cluster).await {
        Ok(connected) => connected,
        Err(groups) => return groups,
    };

    let crd_api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut checks = vec![];
    for expected in weft_policy_k8s_api::crds() {
        let name = expected.metadata.name.clone().unwrap_or_default();
        checks.push(crds::check(&expected, &get(&crd_api, &name).await));
    }
    checks.push(crds::gateway_api(&get(&crd_api, crds::HTTPROUTES).await));
    groups.push(Group {
        title: "CRDs",
        checks,
    });

    let secret = get(
        &Api::<Secret>::namespaced(client.clone(), &inst.namespace),
        &inst.tls_secret(),
    )
    .await;
    let serving = webhooks::serving_cert(&inst, &secret);
    let mutating = get(
        &Api::<MutatingWebhookConfiguration>::all(client.clone()),
        &inst.mutating_webhook(),
    )
    .await;
    let validating = get(
        &Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        &inst.validating_webhook(),
    )
    .await;
    let now = webhooks::now_unix();
    groups.push(Group {
        title: "Webhooks",
        checks: webhooks::check(&inst, &mutating, &validating, &serving, now),
    });

    let deployment = get(
        &Api::<Deployment>::namespaced(client.clone(), &inst.namespace),
        inst.deployment(),
    )
    .await;
    groups.push(Group {
        title: "Controller",
        checks: vec![workload::check(&inst, &deployment)],
    });

    groups.push(Group {
        title: "Certificates",
        checks: webhooks::expiry(&inst, &serving, now),
    });

    let reviews = Api::<SubjectAccessReview>::all(client);
    let mut answers = vec![];
    for access in rbac::required() {
        let answer = reviews
            .create(&PostParams::default(), &rbac::review(&inst, &access))
            .await
            .map_err(describe)
            .and_then(|review| {
                review
                    .status
                    .ok_or_else(|| "the API server's answer has no status".to_string())
            });
        answers.push((access, answer));
    }
    groups.push(Group {
        title: "RBAC",
        checks: vec![rbac::check(&inst, &answers)],
    });
    groups
}

/// A client and the report's first group, saying where it is connected; or the report, when it
/// cannot connect.
pub async fn connected(args: &ClusterArgs) -> Result<(kube::Client, Vec<Group>), Vec<Group>> {
    let title = "Kubernetes API";
    match connect(args).await {
        Ok((client, check)) => Ok((
            client,
            vec![Group {
                title,
                checks: vec![check],
            }],
        )),
        Err(check) => Err(vec![Group {
            title,
            checks: vec![check],
        }]),
    }
}

/// A client for the kubeconfig and context `args` name, and the check line saying where it is
/// connected; or the failed check line.
pub async fn connect(args: &ClusterArgs) -> Result<(kube::Client, Check), Check> {
    let fix = "point --kubeconfig and --context (or $KUBECONFIG) at the cluster; \
               `kubectl cluster-info` tests the same connection";
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => match Kubeconfig::read_from(path) {
            Ok(kubeconfig) => Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        },
        None if args.context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| e.to_string()),
        None => Config::infer().await.map_err(|e| e.to_string()),
    }
    .map_err(|error| Check::fail(format!("cannot load the kubeconfig: {error}"), fix))?;
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|error| Check::fail(format!("cannot make a client for {url}: {error}"), fix))?;
    let version = client.apiserver_version().await.map_err(|error| {
        Check::fail(
            format!(
                "cannot reach the Kubernetes API at {url}: {}",
                describe(error)
            ),
            fix,
        )
    })?;
    Ok((
        client,
        Check::ok(format!(
            "connected to {url} (Kubernetes {})",
            version.git_version
        )),
    ))
}

async fn get<K>(api: &Api<K>, name: &str) -> Fetched<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(object)) => Fetched::Found(object),
        Ok(None) => Fetched::NotFound,
        Err(error) => Fetched::Failed(describe(error)),
    }
}

/// A short description of a request's failure: the API server's status and message when it
/// answered.
pub fn describe(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
