//! The README documents every setting with its flag and default, from the settings' declarations.

use promreload::settings::{Documented, documented};

/// Each setting has a README row starting with its variable, naming its flag and its default.
fn check_rows(settings: &[Documented]) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(!settings.is_empty());
    for s in settings {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", s.env)))
            .unwrap_or_else(|| panic!("README has no row for {}", s.env));
        assert!(row.contains(&format!("`--{}`", s.flag)), "{row}");
        let default = if s.default.is_empty() {
            row.contains("| unset |") || row.contains("| empty |")
        } else {
            row.contains(&format!("| `{}` |", s.default))
        };
        assert!(
            default,
            "README row for {} lacks default {:?}: {row}",
            s.env, s.default
        );
    }
}

#[test]
fn readme_documents_every_setting_and_its_default() {
    check_rows(&documented::<promreload::sidecar::settings::Settings>());
}

#[cfg(feature = "reconciler")]
#[test]
fn readme_documents_every_reconciler_setting_and_its_default() {
    check_rows(&documented::<promreload::reconciler::settings::Cli>());
}

#[cfg(feature = "reconciler")]
#[test]
fn committed_crds_match_the_rust_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/crds/monitoring.coreos.com.yaml"
    );
    let committed = std::fs::read_to_string(path).expect("deploy/crds/monitoring.coreos.com.yaml");
    assert!(
        committed == promreload::reconciler::crds_yaml(),
        "deploy/crds drifted from src/reconciler/crd.rs: run\n  cargo run --bin promreload-reconciler crds > {path}"
    );
}
