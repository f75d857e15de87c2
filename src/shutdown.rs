//! Shutdown and the other signals a process in a Pod gets, for both binaries.

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
