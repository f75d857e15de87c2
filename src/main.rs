//! `promreload`: the config-reloader sidecar. Parses the configuration, starts logging and
//! runs the sidecar until SIGTERM or SIGINT. Exit codes: 0 done, 1 failed, 2 bad configuration.

use std::process::ExitCode;

use promreload::config::{self, Command};
use promreload::{metrics::Metrics, sidecar, telemetry};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let (config, ignored_env) = match config::from_process() {
        Ok(Command::Run {
            config,
            ignored_env,
        }) => (*config, ignored_env),
        Ok(Command::Help(text)) => {
            promreload::print_stdout(&text);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            promreload::print_stdout(&format!("promreload {}\n", env!("CARGO_PKG_VERSION")));
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
        tokio::spawn(promreload::cancel_on_signal(shutdown.clone()));
        sidecar::run(config, Metrics::new(), shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "promreload failed");
            ExitCode::FAILURE
        }
    }
}
