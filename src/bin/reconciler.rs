//! `promreload-reconciler`: with no argument, runs the controller until SIGTERM or SIGINT
//! (configured by `RECONCILER_*`; Kubernetes client from the usual places: in-cluster or
//! `KUBECONFIG`). `render FILE...` prints the config the objects in FILE produce; `crds`
//! prints the CustomResourceDefinitions. Exit codes: 0 done, 1 failed, 2 bad usage.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use promreload::print_stdout;
use promreload::reconciler::config::{ReconcilerConfig, VARIABLES};
use promreload::reconciler::controller::{self, State};
use promreload::reconciler::metrics::ReconcilerMetrics;
use promreload::reconciler::render::Options;
use promreload::reconciler::{crds_yaml, offline};
use tokio_util::sync::CancellationToken;

const USAGE: &str =
    "usage: promreload-reconciler                 run the controller (RECONCILER_* variables)
       promreload-reconciler render [--prometheus NAMESPACE/NAME] [--feature-gates=Name=bool,...]
                                    [--disable-unmanaged-prometheus-configuration] FILE... (- for stdin)
       promreload-reconciler crds           print the CustomResourceDefinitions";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => run(),
        Some("render") => render(&args[1..]),
        Some("crds") => {
            print_stdout(&crds_yaml());
            ExitCode::SUCCESS
        }
        Some("-h" | "--help") => {
            let mut help = format!("{USAGE}\n\nvariables:\n");
            for (name, default, text) in VARIABLES {
                help.push_str(&format!("  {name:<28} {text} (default {default:?})\n"));
            }
            print_stdout(&help);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("promreload-reconciler: unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> ExitCode {
    let config = match ReconcilerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("promreload-reconciler: {e}");
            return ExitCode::from(2);
        }
    };
    promreload::telemetry::init(config.log_level, config.log_format);
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
        tokio::spawn(promreload::handle_signals(shutdown.clone(), None));
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "cannot build a Kubernetes client (in-cluster or KUBECONFIG)");
                return ExitCode::FAILURE;
            }
        };
        let state = Arc::new(State::new(ReconcilerMetrics::new()));
        if let Some(address) = &config.listen_address {
            match promreload::admin::bind(address).await {
                Ok(listener) => {
                    if let Some(addr) = promreload::admin::local_addr(&listener) {
                        tracing::info!(address = %addr, "admin server listening");
                    }
                    tokio::spawn(promreload::admin::serve(listener, None, state.clone(), shutdown.clone()));
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

fn render(args: &[String]) -> ExitCode {
    let mut only = None;
    let mut options = Options::default();
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--disable-unmanaged-prometheus-configuration" {
            options.disable_unmanaged_configuration = true;
        } else if let Some(v) = arg.strip_prefix("--feature-gates=") {
            options = match Options::from_feature_gates(v) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("promreload-reconciler: --feature-gates: {e}");
                    return ExitCode::from(2);
                }
            };
        } else if let Some(v) = arg.strip_prefix("--prometheus=") {
            only = Some(v.to_string());
        } else if arg == "--prometheus" {
            only = it.next().cloned();
        } else if arg.starts_with("--") {
            eprintln!("promreload-reconciler: unknown flag {arg}\n{USAGE}");
            return ExitCode::from(2);
        } else {
            files.push(arg.clone());
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut inputs = Vec::new();
    for file in files {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(&file)
        };
        match text {
            Ok(t) => inputs.push((file, t)),
            Err(e) => {
                eprintln!("promreload-reconciler: reading {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match offline::render_inputs(&inputs, only.as_deref(), &options) {
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
