//! `promreload-reconciler`: with no argument, runs the controller until SIGTERM or SIGINT
//! (configured by `RECONCILER_*`; Kubernetes client from the usual places: in-cluster or
//! `KUBECONFIG`). `render FILE...` prints the config the objects in FILE produce; `crds`
//! prints the CustomResourceDefinitions. Exit codes: 0 done, 1 failed, 2 bad usage.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use promreload::print_stdout;
use promreload::reconciler::controller::{self, State};
use promreload::reconciler::metrics::ReconcilerMetrics;
use promreload::reconciler::settings::{Cli, ReconcilerConfig, RenderArgs, Subcommands};
use promreload::reconciler::{crds_yaml, offline};
use promreload::settings::{self, Parsed};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let parsed = settings::environment("RECONCILER_")
        .and_then(|env| settings::parse::<Cli>(std::env::args_os().skip(1), &env, "RECONCILER_"));
    match parsed {
        Err(error) => {
            eprintln!("promreload-reconciler: {error}");
            ExitCode::from(2)
        }
        Ok(Parsed::Print(text)) => {
            print_stdout(&text);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run {
            settings,
            unknown_env,
            ..
        }) => match settings.command {
            Some(Subcommands::Render(args)) => render(&args),
            Some(Subcommands::Crds) => {
                print_stdout(&crds_yaml());
                ExitCode::SUCCESS
            }
            None => run(settings.run.config(), &unknown_env),
        },
    }
}

fn run(config: ReconcilerConfig, unknown_env: &[String]) -> ExitCode {
    promreload::telemetry::init(config.log_level, config.log_format);
    for name in unknown_env {
        tracing::warn!(variable = %name, "ignoring unknown RECONCILER_ variable");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        match promreload::shutdown::install() {
            Ok(signals) => {
                tokio::spawn(signals.handle(shutdown.clone(), None));
            }
            Err(error) => {
                tracing::error!(%error, "cannot install the signal handlers");
                return ExitCode::FAILURE;
            }
        }
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "cannot build a Kubernetes client (in-cluster or KUBECONFIG)");
                return ExitCode::FAILURE;
            }
        };
        let state = Arc::new(State::new(ReconcilerMetrics::default()));
        if let Some(address) = &config.listen_address {
            match promreload::admin::bind(address).await {
                Ok(listener) => {
                    if let Some(addr) = promreload::admin::local_addr(&listener) {
                        tracing::info!(address = %addr, "admin server listening");
                    }
                    tokio::spawn(promreload::admin::serve(listener, Default::default(), state.clone(), shutdown.clone()));
                }
                Err(error) => {
                    tracing::error!(%error, address, "cannot listen");
                    return ExitCode::FAILURE;
                }
            }
        }
        controller::run(client, config, state, shutdown).await;
        tracing::info!("promreload-reconciler stopped");
        ExitCode::SUCCESS
    })
}

fn render(args: &RenderArgs) -> ExitCode {
    let mut inputs = Vec::new();
    for file in &args.files {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(file)
        };
        match text {
            Ok(t) => inputs.push((file.clone(), t)),
            Err(e) => {
                eprintln!("promreload-reconciler: reading {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match offline::render_inputs(&inputs, args.prometheus.as_deref(), &args.options()) {
        Ok(report) => {
            print_stdout(&report.configs);
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("promreload-reconciler: {e}");
            ExitCode::FAILURE
        }
    }
}
