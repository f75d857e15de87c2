//! promreload keeps Prometheus's configuration in sync inside Kubernetes.
//!
//! **The sidecar** ([`sidecar`]) runs next to Prometheus. It watches the directory where the
//! kubelet mounts the operator-generated Secret (and any rule directories), renders the config
//! as a stream (gunzip, expand `$(VAR)` from its environment, hash), writes it atomically, and
//! tells Prometheus to reload, once per real change, with backoff while Prometheus is not
//! ready. A bad input never replaces the last good config.
//!
//! **The reconciler** (`reconciler`, behind the default `reconciler` feature) plays prometheus-operator's config generation: it
//! renders `Prometheus` and `ServiceMonitor` objects into the gzipped config the sidecar reads.
//!
//! Sidecar modules, in the order a config travels: [`config`] (settings), [`sidecar::watch`],
//! [`sidecar::render`] and [`sidecar::expand`], [`sidecar::output`], [`sidecar::reload`];
//! around them [`admin`] (probes, metrics, status), [`metrics`] and [`telemetry`].

pub mod admin;
pub mod config;
pub mod metrics;
#[cfg(feature = "reconciler")]
pub mod reconciler;
pub mod sidecar;
pub mod telemetry;
pub mod webconfig;

/// Cancels `shutdown` on SIGTERM (what Kubernetes sends) or SIGINT.
pub async fn cancel_on_signal(shutdown: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
    }
    shutdown.cancel();
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error: the rest is
/// dropped quietly instead of panicking like `print!`.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
