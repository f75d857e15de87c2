//! The reconciler's command line: `run` (the default, configured by `RECONCILER_*` variables
//! or the same flags), `render FILE...` and `crds`, declared once with clap's derive API and
//! parsed by [`crate::settings`] (a bad value names the flag or variable it came from).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::reconciler::render::Options;
use crate::settings::{
    OrEmpty, or_empty, parse_bool, parse_listen_address, positive_duration, text,
};
use crate::telemetry::{LogFormat, parse_format, parse_level};

/// `promreload-reconciler [run settings] [render FILE... | crds]`.
#[derive(Debug, Parser)]
#[command(
    name = "promreload-reconciler",
    version,
    about = "promreload-reconciler: renders Prometheus, ServiceMonitor and PrometheusRule objects \
             into the Secret and ConfigMaps prometheus-operator writes.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Without a subcommand: run the controller.
    #[command(flatten)]
    pub run: RunSettings,
    /// What to do instead of running the controller.
    #[command(subcommand)]
    pub command: Option<Subcommands>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Subcommands {
    /// Print the config the objects in FILE produce (no cluster needed).
    Render(RenderArgs),
    /// Print the CustomResourceDefinitions.
    Crds,
}

/// The controller's settings.
#[derive(Debug, Args)]
pub struct RunSettings {
    /// address of /healthz, /readyz, /metrics; empty = no server
    #[arg(long, env = "RECONCILER_LISTEN_ADDRESS", value_name = "ADDRESS",
          default_value = ":8080", value_parser = or_empty(parse_listen_address))]
    pub listen_address: OrEmpty<String>,

    /// log level: error, warn, info or debug
    #[arg(long, env = "RECONCILER_LOG_LEVEL", value_name = "LEVEL", default_value = "info",
          value_parser = parse_level)]
    pub log_level: tracing::Level,

    /// log format: logfmt or json
    #[arg(long, env = "RECONCILER_LOG_FORMAT", value_name = "FORMAT",
          default_value = "logfmt", value_parser = parse_format)]
    pub log_format: LogFormat,

    /// watch only this namespace; empty = all namespaces
    #[arg(long, env = "RECONCILER_NAMESPACE", value_name = "NAMESPACE", default_value = "",
          hide_default_value = true, value_parser = or_empty(text))]
    pub namespace: OrEmpty<String>,

    /// handle only Prometheus objects whose operator.prometheus.io/controller-id annotation is this; empty = those without one (prometheus-operator's --controller-id)
    #[arg(long, env = "RECONCILER_CONTROLLER_ID", value_name = "ID", default_value = "",
          hide_default_value = true, value_parser = text)]
    pub controller_id: String,

    /// handle only the Prometheus objects this label selector selects; empty = all (prometheus-operator's --prometheus-instance-selector)
    #[arg(long, env = "RECONCILER_PROMETHEUS_INSTANCE_SELECTOR", value_name = "SELECTOR",
          default_value = "", hide_default_value = true,
          value_parser = or_empty(parse_label_selector))]
    pub prometheus_instance_selector: OrEmpty<String>,

    /// full re-render of every Prometheus, besides watch events
    #[arg(long, env = "RECONCILER_RESYNC_INTERVAL", value_name = "DURATION",
          default_value = "5m", value_parser = positive_duration)]
    pub resync_interval: Duration,

    /// prometheus-operator's feature gates that change the output: PrometheusShardRetentionPolicy=true|false (default true, as in v0.94)
    #[arg(long, env = "RECONCILER_FEATURE_GATES", value_name = "NAME=BOOL,...",
          default_value = "", hide_default_value = true, value_parser = Options::from_feature_gates)]
    pub feature_gates: Options,

    /// true: also run each Prometheus as prometheus-operator does (StatefulSets, the prometheus-operated Service, the web-config Secret), with promreload as the config reloader
    #[arg(long, env = "RECONCILER_RUN_PROMETHEUS", value_name = "BOOL", default_value = "false",
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = parse_bool)]
    pub run_prometheus: bool,

    /// where the reloaders of the Pods it runs read the config Secret: api (live as soon as the API server has it; a Role per Prometheus lets its Pods read that one Secret) or volume (the operator's layout); a Prometheus's promreload.io/reloader-source annotation overrides it
    #[arg(
        long,
        env = "RECONCILER_RELOADER_SOURCE",
        value_name = "SOURCE",
        default_value = "api",
        value_enum
    )]
    pub reloader_source: crate::reconciler::workload::Source,

    /// the config reloader's image in the Pods it runs (with --run-prometheus)
    #[arg(long, env = "RECONCILER_RELOADER_IMAGE", value_name = "IMAGE",
          default_value = DEFAULT_RELOADER_IMAGE, value_parser = reloader_image)]
    pub reloader_image: String,

    /// true: a Prometheus without selectors gets a generated (empty) config instead of being left to the user
    #[arg(long, env = "RECONCILER_DISABLE_UNMANAGED_PROMETHEUS_CONFIGURATION",
          value_name = "BOOL", default_value = "false", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub disable_unmanaged_prometheus_configuration: bool,
}

/// `render`'s arguments.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// render only this Prometheus
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub prometheus: Option<String>,

    /// prometheus-operator's feature gates, as for the controller
    #[arg(long, value_name = "NAME=BOOL,...", default_value = "", hide_default_value = true,
          value_parser = Options::from_feature_gates)]
    pub feature_gates: Options,

    /// render a Prometheus without selectors too, as the controller with that setting does
    #[arg(long)]
    pub disable_unmanaged_prometheus_configuration: bool,

    /// files of Kubernetes objects (YAML, `---`-separated, or a List); - for stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

impl RenderArgs {
    /// The output choices.
    pub fn options(&self) -> Options {
        with_unmanaged(
            self.feature_gates,
            self.disable_unmanaged_prometheus_configuration,
        )
    }
}

/// The validated configuration of the reconciler.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`; `None` = no server.
    pub listen_address: Option<String>,
    /// Maximum log level.
    pub log_level: tracing::Level,
    /// Log format.
    pub log_format: LogFormat,
    /// Watch only this namespace (`None` = all).
    pub namespace: Option<String>,
    /// Full resync period.
    pub resync_interval: Duration,
    /// Output choices, as prometheus-operator's feature gates make them.
    pub options: Options,
    /// The `operator.prometheus.io/controller-id` annotation of the Prometheus objects this
    /// reconciler handles (empty: those without one).
    pub controller_id: String,
    /// Label selector of the Prometheus objects it handles (`None` = all).
    pub prometheus_instance_selector: Option<String>,
    /// How it runs each Prometheus's Pods; `None`: it writes the config only.
    pub workloads: Option<crate::reconciler::workload::Settings>,
}

/// The reloader image this repository builds.
pub const DEFAULT_RELOADER_IMAGE: &str = concat!("promreload:", env!("CARGO_PKG_VERSION"));

/// An image reference, checked as Pods will use it.
fn reloader_image(s: &str) -> Result<String, String> {
    let image = s.trim();
    crate::reconciler::workload::image_reference(image)?;
    Ok(image.to_string())
}

impl RunSettings {
    /// The configuration these settings give (each value was checked by its parser).
    pub fn config(self) -> ReconcilerConfig {
        ReconcilerConfig {
            listen_address: self.listen_address.0,
            log_level: self.log_level,
            log_format: self.log_format,
            namespace: self.namespace.0,
            resync_interval: self.resync_interval,
            options: with_unmanaged(
                self.feature_gates,
                self.disable_unmanaged_prometheus_configuration,
            ),
            controller_id: self.controller_id,
            prometheus_instance_selector: self.prometheus_instance_selector.0,
            workloads: self.run_prometheus.then(|| {
                crate::reconciler::workload::Settings::new(
                    self.reloader_source,
                    self.reloader_image,
                )
            }),
        }
    }
}

/// A label selector in its text form (`a=b,c in (d)`), checked before it is sent to the API
/// server, so a typo stops the reconciler at start with exit code 2 instead of failing every
/// list.
fn parse_label_selector(s: &str) -> Result<String, String> {
    crate::reconciler::validate::label_selector(s.trim())?;
    Ok(s.trim().to_string())
}

/// The feature gates' output choices, plus `--disable-unmanaged-prometheus-configuration`
/// (the same for the controller and `render`).
fn with_unmanaged(gates: Options, disable_unmanaged: bool) -> Options {
    Options {
        disable_unmanaged_configuration: disable_unmanaged,
        ..gates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_id_and_instance_selector_are_prometheus_operators() {
        let config = |args: &[&str]| {
            let argv = std::iter::once("promreload-reconciler").chain(args.iter().copied());
            Cli::try_parse_from(argv).map(|cli| cli.run.config())
        };
        let defaults = config(&[]).unwrap();
        assert_eq!(
            (
                defaults.controller_id.as_str(),
                defaults.prometheus_instance_selector
            ),
            ("", None)
        );
        let set = config(&[
            "--controller-id=promreload",
            "--prometheus-instance-selector=team in (a, b),!legacy",
        ])
        .unwrap();
        assert_eq!(set.controller_id, "promreload");
        assert_eq!(
            set.prometheus_instance_selector.as_deref(),
            Some("team in (a, b),!legacy")
        );
        let bad = config(&["--prometheus-instance-selector=team in (a"]).unwrap_err();
        assert_eq!(bad.exit_code(), 2);
        assert!(bad.to_string().contains("unbalanced parentheses"), "{bad}");
    }
}
