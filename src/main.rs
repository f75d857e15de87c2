//! `promreload`: the config-reloader sidecar. Parses the configuration, starts logging and
//! runs the sidecar until SIGTERM or SIGINT. Exit codes: 0 done, 1 failed, 2 bad configuration.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use promreload::sidecar::metrics::Metrics;
use promreload::sidecar::settings::{self, Command};
use promreload::{shutdown, sidecar, telemetry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long blocking work in flight may delay the exit after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let (config, ignored_env) = match settings::from_process() {
        Ok(Command::Run {
            config,
            ignored_env,
        }) => (*config, ignored_env),
        Ok(Command::Print(text)) => {
            promreload::print_stdout(&text);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("promreload: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_level, config.log_format);
    for name in ignored_env {
        tracing::warn!(variable = %name, "ignoring unknown RELOADER_ variable");
    }
    promreload::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let reload_now = Arc::new(Notify::new());
        let signals = shutdown::install().map_err(sidecar::Error::Signals)?;
        tokio::spawn(signals.handle(shutdown.clone(), Some(reload_now.clone())));
        let metrics = match config.config_secret {
            Some(_) => Metrics::with_secret_watch(),
            None => Metrics::new(),
        };
        sidecar::run(config, metrics, reload_now, shutdown).await
    });
    // A write in flight gets a moment to finish; a read stuck in the kernel (a hung
    // filesystem) must not keep the process from exiting.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "promreload failed");
            ExitCode::FAILURE
        }
    }
}
