//! `promreload-reconciler render`: the controller's selection and rendering, run on objects
//! read from YAML files, so users can preview their config without a cluster.

use kube::ResourceExt;

use super::objects::{ObjectError, Objects};
use super::render;
use super::select::key;

/// What `render` prints.
#[derive(Debug, Default)]
pub struct Report {
    /// The configs (stdout).
    pub configs: String,
    /// Rejected scrape objects and PrometheusRules, and skipped documents (stderr).
    pub warnings: Vec<String>,
    /// Prometheuses whose config could not be generated (stderr; exit 1).
    pub errors: Vec<String>,
}

/// Why nothing can be rendered.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A document cannot be read.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// `--prometheus` names a Prometheus that is not in the input.
    #[error("no Prometheus {0} in the input")]
    NoSuchPrometheus(String),
    /// The input has no Prometheus at all.
    #[error("no Prometheus object in the input")]
    NoPrometheus,
}

/// Renders every Prometheus in `inputs` (name, text), or only `only` (`namespace/name`).
pub fn render_inputs(
    inputs: &[(String, String)],
    only: Option<&str>,
    options: &render::Options,
) -> Result<Report, InputError> {
    let mut objects = Objects::default();
    for (name, text) in inputs {
        objects.add_yaml(text, name)?;
    }
    let mut report = Report {
        warnings: objects.skipped.clone(),
        ..Report::default()
    };
    let mut prometheuses: Vec<_> = objects
        .prometheuses
        .iter()
        .filter(|p| only.is_none_or(|o| key(*p) == o))
        .collect();
    prometheuses.sort_by_key(|p| key(*p));
    if prometheuses.is_empty() {
        return Err(match only {
            Some(o) => InputError::NoSuchPrometheus(o.to_string()),
            None => InputError::NoPrometheus,
        });
    }
    let several = prometheuses.len() > 1;
    for p in prometheuses {
        if render::unmanaged(p, options) {
            report.warnings.push(format!(
                "Prometheus {} has no selectors: its config is the user's (unmanaged), nothing rendered",
                key(p)
            ));
            continue;
        }
        match render::render(p, &objects.inputs(), options) {
            Ok(rendered) => {
                for (kind, verdicts) in &rendered.scrape {
                    for r in &verdicts.rejected {
                        report.warnings.push(format!(
                            "{} {} left out of Prometheus {} (InvalidConfiguration): {}",
                            kind.name(),
                            r.object,
                            key(p),
                            r.reason
                        ));
                    }
                }
                for r in &rendered.rules.rejected {
                    report.warnings.push(format!(
                        "PrometheusRule {} left out of Prometheus {} (InvalidConfiguration): {}",
                        r.object,
                        key(p),
                        r.reason
                    ));
                }
                if several {
                    if !report.configs.is_empty() {
                        report.configs.push_str("---\n");
                    }
                    report.configs.push_str(&format!(
                        "# Prometheus {}/{}\n",
                        p.namespace().unwrap_or_default(),
                        p.name_any()
                    ));
                }
                report.configs.push_str(&rendered.yaml);
            }
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    Ok(report)
}
