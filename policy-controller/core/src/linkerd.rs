//! Linkerd's spelling of the annotations Weft reads, so a manifest written for Linkerd works
//! unchanged: `linkerd.io/inject` for `weft.dev/inject`, `config.linkerd.io/<setting>` for
//! `config.weft.dev/<setting>` (the settings both control planes name alike), and Linkerd's
//! native-sidecar annotations for `config.weft.dev/native-sidecar`.
//!
//! Where an object carries both spellings, Weft's wins; when their values differ, the lookup
//! says which Linkerd value was ignored, so the caller can warn about it.

use std::collections::BTreeMap;

/// Each Weft annotation that has Linkerd spellings, with them (in the order they are consulted).
pub const SPELLINGS: &[(&str, &[&str])] = &[
    ("weft.dev/inject", &["linkerd.io/inject"]),
    (
        "config.weft.dev/proxy-image",
        &["config.linkerd.io/proxy-image"],
    ),
    (
        "config.weft.dev/proxy-version",
        &["config.linkerd.io/proxy-version"],
    ),
    (
        "config.weft.dev/proxy-log-level",
        &["config.linkerd.io/proxy-log-level"],
    ),
    (
        "config.weft.dev/proxy-cpu-request",
        &["config.linkerd.io/proxy-cpu-request"],
    ),
    (
        "config.weft.dev/proxy-cpu-limit",
        &["config.linkerd.io/proxy-cpu-limit"],
    ),
    (
        "config.weft.dev/proxy-memory-request",
        &["config.linkerd.io/proxy-memory-request"],
    ),
    (
        "config.weft.dev/proxy-memory-limit",
        &["config.linkerd.io/proxy-memory-limit"],
    ),
    (
        "config.weft.dev/proxy-uid",
        &["config.linkerd.io/proxy-uid"],
    ),
    (
        "config.weft.dev/skip-inbound-ports",
        &["config.linkerd.io/skip-inbound-ports"],
    ),
    (
        "config.weft.dev/skip-outbound-ports",
        &["config.linkerd.io/skip-outbound-ports"],
    ),
    (
        "config.weft.dev/opaque-ports",
        &["config.linkerd.io/opaque-ports"],
    ),
    (
        "config.weft.dev/default-inbound-policy",
        &["config.linkerd.io/default-inbound-policy"],
    ),
    (
        "config.weft.dev/proxy-require-identity-inbound-ports",
        &["config.linkerd.io/proxy-require-identity-inbound-ports"],
    ),
    (
        "config.weft.dev/proxy-log-format",
        &["config.linkerd.io/proxy-log-format"],
    ),
    (
        "config.weft.dev/image-pull-policy",
        &["config.linkerd.io/image-pull-policy"],
    ),
    (
        "config.weft.dev/proxy-gid",
        &["config.linkerd.io/proxy-gid"],
    ),
    (
        "config.weft.dev/proxy-ephemeral-storage-request",
        &["config.linkerd.io/proxy-ephemeral-storage-request"],
    ),
    (
        "config.weft.dev/proxy-ephemeral-storage-limit",
        &["config.linkerd.io/proxy-ephemeral-storage-limit"],
    ),
    (
        "config.weft.dev/skip-subnets",
        &["config.linkerd.io/skip-subnets"],
    ),
    (
        "config.weft.dev/proxy-inbound-connect-timeout",
        &["config.linkerd.io/proxy-inbound-connect-timeout"],
    ),
    (
        "config.weft.dev/proxy-outbound-connect-timeout",
        &["config.linkerd.io/proxy-outbound-connect-timeout"],
    ),
    (
        "config.weft.dev/proxy-inbound-discovery-cache-unused-timeout",
        &["config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout"],
    ),
    (
        "config.weft.dev/proxy-outbound-discovery-cache-unused-timeout",
        &["config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout"],
    ),
    (
        "config.weft.dev/proxy-disable-inbound-protocol-detect-timeout",
        &["config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout"],
    ),
    (
        "config.weft.dev/proxy-disable-outbound-protocol-detect-timeout",
        &["config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout"],
    ),
    (
        "config.weft.dev/access-log",
        &["config.linkerd.io/access-log"],
    ),
    (
        "config.weft.dev/shutdown-grace-period",
        &["config.linkerd.io/shutdown-grace-period"],
    ),
    (
        "config.weft.dev/proxy-admin-shutdown",
        &["config.linkerd.io/proxy-admin-shutdown"],
    ),
    (
        "config.weft.dev/proxy-metrics-hostname-labels",
        &["config.linkerd.io/proxy-metrics-hostname-labels"],
    ),
    (
        "config.weft.dev/proxy-log-http-headers",
        &["config.linkerd.io/proxy-log-http-headers"],
    ),
    (
        "config.weft.dev/proxy-additional-env",
        &["config.linkerd.io/proxy-additional-env"],
    ),
    (
        "config.weft.dev/native-sidecar",
        &[
            "config.linkerd.io/proxy-enable-native-sidecar",
            "config.alpha.linkerd.io/proxy-enable-native-sidecar",
        ],
    ),
];

/// Linkerd's proxy annotations that Weft does not act on, with why: the injector warns when a pod
/// or namespace carries one, and otherwise ignores it.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("config.linkerd.io/admin-port", "Weft's proxy ports are fixed (4191)"),
    ("config.linkerd.io/control-port", "Weft's proxy ports are fixed (4190)"),
    ("config.linkerd.io/inbound-port", "Weft's proxy ports are fixed (4143)"),
    ("config.linkerd.io/outbound-port", "Weft's proxy ports are fixed (4140)"),
    ("config.linkerd.io/pod-inbound-ports", "Weft's injector lists the pod's container ports itself"),
    ("config.linkerd.io/enable-debug-sidecar", "Weft injects no debug sidecar"),
    ("config.linkerd.io/debug-image", "Weft injects no debug sidecar"),
    ("config.linkerd.io/debug-image-version", "Weft injects no debug sidecar"),
    ("config.linkerd.io/debug-image-pull-policy", "Weft injects no debug sidecar"),
    ("config.linkerd.io/enable-external-profiles", "Weft serves profiles of the cluster's names only"),
    ("config.linkerd.io/enable-gateway", "Weft runs no multicluster gateway"),
    ("config.linkerd.io/close-wait-timeout", "Weft's init container sets no conntrack timeout"),
    ("config.linkerd.io/proxy-cpu-ratio-limit", "Weft sets no proxy core count"),
    (
        "config.linkerd.io/proxy-await",
        "the proxy is a native sidecar by default, which the app waits for; with --native-sidecar=false nothing waits",
    ),
    (
        "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
        "Weft adds no preStop hook",
    ),
];

/// The Linkerd spellings of the Weft annotation `weft_key` (none when Linkerd has no such
/// annotation).
pub fn linkerd_spellings(weft_key: &str) -> &'static [&'static str] {
    SPELLINGS
        .iter()
        .find(|(weft, _)| *weft == weft_key)
        .map_or(&[], |(_, linkerd)| linkerd)
}

/// An annotation found under one of its spellings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// The spelling the value was read from: Weft's when present, else the first Linkerd one.
    pub key: &'a str,
    pub value: &'a str,
    /// Spellings that were present too but with another value, which is ignored.
    pub ignored: Vec<(&'a str, &'a str)>,
}

impl Found<'_> {
    /// A warning for each ignored spelling, naming both, e.g. for admission warnings.
    pub fn conflict_warnings(&self, on: &str) -> Vec<String> {
        self.ignored
            .iter()
            .map(|(key, value)| {
                format!(
                    "{on}: ignored {key}: {value:?}: {} is {:?} and {} wins",
                    self.key,
                    self.value,
                    if self.key.starts_with("config.weft.dev/") || self.key.starts_with("weft.dev/")
                    {
                        "Weft's spelling"
                    } else {
                        "the first Linkerd spelling"
                    }
                )
            })
            .collect()
    }
}

/// Looks up the Weft annotation `weft_key` in any of its spellings with `get`, which returns a
/// key's value (or an error, e.g. for a value that is not a string). Weft's spelling wins.
pub fn try_lookup<'a, E>(
    weft_key: &'a str,
    mut get: impl FnMut(&'a str) -> Result<Option<&'a str>, E>,
) -> Result<Option<Found<'a>>, E> {
    let mut found: Option<Found<'a>> = None;
    for key in std::iter::once(weft_key).chain(linkerd_spellings(weft_key).iter().copied()) {
        let Some(value) = get(key)? else {
            continue;
        };
        match &mut found {
            None => {
                found = Some(Found {
                    key,
                    value,
                    ignored: Vec::new(),
                })
            }
            Some(first) if first.value != value => first.ignored.push((key, value)),
            Some(_) => {}
        }
    }
    Ok(found)
}

/// [`try_lookup`] in a map of annotations.
pub fn lookup<'a>(
    annotations: &'a BTreeMap<String, String>,
    weft_key: &'a str,
) -> Option<Found<'a>> {
    let found: Result<_, std::convert::Infallible> =
        try_lookup(weft_key, |key| Ok(annotations.get(key).map(String::as_str)));
    match found {
        Ok(found) => found,
        Err(never) => match never {},
    }
}

/// The value of the Weft annotation `weft_key` in any of its spellings (Weft's wins).
pub fn value<'a>(annotations: &'a BTreeMap<String, String>, weft_key: &'a str) -> Option<&'a str> {
    lookup(annotations, weft_key).map(|found| found.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_weft_annotation_with_a_linkerd_spelling_is_listed_once() {
        let names = [
            crate::names::INJECT_ANNOTATION,
            crate::names::OPAQUE_PORTS_ANNOTATION,
            crate::names::DEFAULT_POLICY_ANNOTATION,
        ];
        for name in names {
            assert!(!linkerd_spellings(name).is_empty(), "{name}");
        }
        for (weft, linkerd) in SPELLINGS {
            assert_eq!(
                SPELLINGS.iter().filter(|(w, _)| w == weft).count(),
                1,
                "{weft}"
            );
            assert!(!linkerd.is_empty(), "{weft}");
            for key in *linkerd {
                assert!(key.contains("linkerd.io/"), "{key}");
                let suffix = weft
                    .rsplit('/')
                    .next()
                    .expect("rsplit yields at least one part");
                let same_setting = key.ends_with(&format!("/{suffix}"))
                    || (suffix == "native-sidecar"
                        && key.ends_with("/proxy-enable-native-sidecar"));
                assert!(same_setting, "{weft} and {key} must name one setting");
            }
        }
        assert!(linkerd_spellings("config.weft.dev/no-such-setting").is_empty());
    }

    #[test]
    fn weft_wins_and_a_different_linkerd_value_is_reported() {
        type Case<'c> = (
            &'c [(&'c str, &'c str)],
            Option<(&'c str, &'c str)>,
            &'c [&'c str],
        );
        let cases: &[Case<'_>] = &[
            (&[], None, &[]),
            (
                &[("config.linkerd.io/opaque-ports", "3306")],
                Some(("config.linkerd.io/opaque-ports", "3306")),
                &[],
            ),
            (
                &[
                    ("config.linkerd.io/opaque-ports", "3306"),
                    ("config.weft.dev/opaque-ports", "3306"),
                ],
                Some(("config.weft.dev/opaque-ports", "3306")),
                &[],
            ),
            (
                &[
                    ("config.linkerd.io/opaque-ports", "5432"),
                    ("config.weft.dev/opaque-ports", "3306"),
                ],
                Some(("config.weft.dev/opaque-ports", "3306")),
                &["pod a: ignored config.linkerd.io/opaque-ports: \"5432\": config.weft.dev/opaque-ports is \"3306\" and Weft's spelling wins"],
            ),
            (
                &[("linkerd.io/inject", "enabled"), ("weft.dev/inject", "disabled")],
                Some(("weft.dev/inject", "disabled")),
                &["pod a: ignored linkerd.io/inject: \"enabled\": weft.dev/inject is \"disabled\" and Weft's spelling wins"],
            ),
            (
                &[
                    ("config.alpha.linkerd.io/proxy-enable-native-sidecar", "false"),
                    ("config.linkerd.io/proxy-enable-native-sidecar", "true"),
                ],
                Some(("config.linkerd.io/proxy-enable-native-sidecar", "true")),
                &["pod a: ignored config.alpha.linkerd.io/proxy-enable-native-sidecar: \"false\": config.linkerd.io/proxy-enable-native-sidecar is \"true\" and the first Linkerd spelling wins"],
            ),
        ];
        let keys = [
            "config.weft.dev/opaque-ports",
            "weft.dev/inject",
            "config.weft.dev/native-sidecar",
        ];
        for (annotations, expected, warnings) in cases {
            let annotations = map(annotations);
            let found = keys.iter().find_map(|key| lookup(&annotations, key));
            assert_eq!(
                found.as_ref().map(|f| (f.key, f.value)),
                *expected,
                "{annotations:?}"
            );
            let got = found
                .map(|f| f.conflict_warnings("pod a"))
                .unwrap_or_default();
            assert_eq!(got, *warnings, "{annotations:?}");
        }
    }

    #[test]
    fn errors_of_the_getter_are_returned() {
        let result = try_lookup("weft.dev/inject", |key| {
            if key == "linkerd.io/inject" {
                Err(key.to_string())
            } else {
                Ok(None)
            }
        });
        assert_eq!(result, Err("linkerd.io/inject".to_string()));
    }
}
