//! Shutdown and the other signals a process in a Pod gets, for both binaries.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signal handlers of a process in a Pod, installed: SIGTERM (what Kubernetes sends),
/// SIGINT, SIGHUP, and SIGUSR1, SIGUSR2 and SIGALRM, whose default is to kill the process.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
    alrm: Signal,
}

/// Installs the handlers before anything else runs, so a process that could be killed by a
/// stray signal, or could not be stopped cleanly, does not start at all.
pub fn install() -> std::io::Result<Signals> {
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
        usr1: signal(SignalKind::user_defined1())?,
        usr2: signal(SignalKind::user_defined2())?,
        alrm: signal(SignalKind::alarm())?,
    })
}

impl Signals {
    /// Handles the signals: SIGTERM and SIGINT cancel `shutdown`; SIGHUP notifies `reload`
    /// (re-check and reload now) or, without one, is logged and ignored; SIGUSR1, SIGUSR2 and
    /// SIGALRM are logged and ignored.
    pub async fn handle(
        mut self,
        shutdown: tokio_util::sync::CancellationToken,
        reload: Option<std::sync::Arc<tokio::sync::Notify>>,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM received; shutting down");
                    break;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT received; shutting down");
                    break;
                }
                _ = self.hup.recv() => match &reload {
                    Some(reload) => reload.notify_one(),
                    None => tracing::info!("SIGHUP received; ignored"),
                },
                _ = self.usr1.recv() => tracing::info!("SIGUSR1 received; ignored"),
                _ = self.usr2.recv() => tracing::info!("SIGUSR2 received; ignored"),
                _ = self.alrm.recv() => tracing::info!("SIGALRM received; ignored"),
            }
        }
        shutdown.cancel();
    }
}
