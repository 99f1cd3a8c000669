//! `weft inject` (annotate mode) on templates whose metadata or annotations are null or malformed.

#![allow(clippy::unwrap_used)]
use weft_injector::{
    config::ProxyArgs,
    manifest::{self, InjectMode},
    Injector,
};

fn injector() -> Injector {
    Injector::new(
        ProxyArgs::default()
            .to_config(Some(include_str!("trust-anchors.pem")))
            .unwrap(),
    )
}

fn deployment(template_metadata: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n{template_metadata}    spec:\n      containers:\n      - name: app\n        image: app:1\n"
    )
}

#[test]
fn null_metadata_or_annotations_get_the_annotation_and_uninject_removes_it() {
    for (case, metadata) in [
        (
            "annotations: null",
            "    metadata:\n      annotations: null\n",
        ),
        ("annotations: ~", "    metadata:\n      annotations: ~\n"),
        ("metadata: null", "    metadata: null\n"),
    ] {
        let input = deployment(metadata);
        let injected = manifest::inject(&input, &injector(), InjectMode::Annotate)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            injected.report,
            ["deployment/web: injected (weft.dev/inject: enabled added)"],
            "{case}"
        );
        assert!(
            injected.yaml.contains("weft.dev/inject: enabled"),
            "{case}: {}",
            injected.yaml
        );
        let uninjected = manifest::uninject_manifest(&injected.yaml).unwrap();
        assert!(
            !uninjected.yaml.contains("weft.dev/"),
            "{case}: uninject leaves no Weft annotation: {}",
            uninjected.yaml
        );
    }
}

#[test]
fn annotations_that_are_not_a_mapping_are_refused_naming_the_field() {
    for (metadata, field) in [
        (
            "    metadata:\n      annotations: [a, b]\n",
            "spec.template.metadata.annotations",
        ),
        (
            "    metadata:\n      annotations: text\n",
            "spec.template.metadata.annotations",
        ),
        ("    metadata: [1]\n", "spec.template.metadata"),
    ] {
        let error = manifest::inject(&deployment(metadata), &injector(), InjectMode::Annotate)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("{field} must be a mapping")),
            "{metadata:?}: {error}"
        );
    }
}
