//! What both binaries report, and how: one `tracing` subscriber writing to stderr, as logfmt
//! (the Go reloader's default) or JSON, and the `kind` label of their failure counters. Events
//! carry fields, never config contents, credentials or variable values.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

use prometheus_client::encoding::EncodeLabelSet;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line (the Go reloader's default).
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The label of per-kind failure counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The error kind (`decode`, `too_large`, `connect`, `status`, ...).
    pub kind: String,
}

/// The OpenMetrics text exposition of `registry` (both binaries' `/metrics`).
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(level: tracing::Level, format: LogFormat) {
    let filter = LevelFilter::from_level(level);
    let layer = match format {
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_span_path(false)
            .layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
}

/// `error`, `warn`, `info`, `debug` or `trace`.
pub fn parse_level(s: &str) -> Result<tracing::Level, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(tracing::Level::ERROR),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "info" => Ok(tracing::Level::INFO),
        "debug" => Ok(tracing::Level::DEBUG),
        "trace" => Ok(tracing::Level::TRACE),
        _ => Err("expected error, warn, info or debug".into()),
    }
}

/// `logfmt` or `json`.
pub fn parse_format(s: &str) -> Result<LogFormat, String> {
    match s.trim() {
        "logfmt" => Ok(LogFormat::Logfmt),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected logfmt or json".into()),
    }
}
