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

/// Handles the signals a process in a Pod gets: SIGTERM (what Kubernetes sends) and SIGINT
/// cancel `shutdown`; SIGHUP notifies `reload` (re-check and reload now) or, without one, is
/// logged and ignored; SIGUSR1, SIGUSR2 and SIGALRM, whose default is to kill the process,
/// are logged and ignored.
pub async fn handle_signals(
    shutdown: tokio_util::sync::CancellationToken,
    reload: Option<std::sync::Arc<tokio::sync::Notify>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
        SignalKind::user_defined1(),
        SignalKind::user_defined2(),
        SignalKind::alarm(),
    ];
    let streams: Result<Vec<_>, _> = kinds.iter().map(|k| signal(*k)).collect();
    let Ok(streams) = streams else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let [mut term, mut int, mut hup, mut usr1, mut usr2, mut alrm]: [_; 6] =
        streams.try_into().expect("six signal streams");
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM received; shutting down");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT received; shutting down");
                break;
            }
            _ = hup.recv() => match &reload {
                Some(reload) => reload.notify_one(),
                None => tracing::info!("SIGHUP received; ignored"),
            },
            _ = usr1.recv() => tracing::info!("SIGUSR1 received; ignored"),
            _ = usr2.recv() => tracing::info!("SIGUSR2 received; ignored"),
            _ = alrm.recv() => tracing::info!("SIGALRM received; ignored"),
        }
    }
    shutdown.cancel();
}

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
