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
//! Sidecar modules, in the order a config travels: [`sidecar::settings`],
//! [`sidecar::watch`], [`sidecar::render`] and [`sidecar::expand`], [`sidecar::output`],
//! [`sidecar::reload`]; around them [`sidecar::metrics`] and [`sidecar::status`]. What both
//! binaries share sits at the top: [`settings`] (flags and variables), [`telemetry`] (logs and
//! failure labels), [`shutdown`] (signals) and [`admin`] (probes, metrics, TLS).

pub mod admin;
#[cfg(feature = "reconciler")]
pub mod reconciler;
pub mod settings;
pub mod shutdown;
pub mod sidecar;
pub mod telemetry;

/// Raises the soft limit on open files to the hard limit, as Go programs do at start, so the
/// admin server's connection cap leaves the work loop room. Failure is harmless.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error: the rest is
/// dropped quietly instead of panicking like `print!`.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
