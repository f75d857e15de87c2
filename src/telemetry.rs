//! Logging: one `tracing` subscriber writing to stderr, as logfmt (the Go reloader's default)
//! or JSON. Events carry fields, never config contents, credentials or variable values.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

use crate::config::LogFormat;

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
