//! `postgres-mcp serve`: logging, the runtime, and the server until SIGTERM, then the drain.

use std::process::ExitCode;

use clap::Args;

use super::config::{ConfigFlags, invalid};
use crate::{instance::InstanceId, server, shutdown::termination_signal, telemetry, trace_export};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigFlags,
}

pub fn run(args: ServeArgs) -> ExitCode {
    crate::allocator::tune_for_reloads();
    let config = match args.config.load() {
        Ok(config) => config,
        Err(error) => return invalid(error),
    };
    let instance = InstanceId::resolve(config.instance_id.as_deref(), std::env::var("HOSTNAME").ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    // The span exporter's batch task runs on this runtime.
    let exporter = match runtime.block_on(async { trace_export::start(&config.trace, instance.as_str()) }) {
        Ok(exporter) => exporter,
        Err(error) => return invalid(format!("{error:#}")),
    };
    let (layer, export) = exporter.unzip();
    let _log_guard = match telemetry::init_with(&config.log, instance.as_str(), layer) {
        Ok(guard) => guard,
        Err(error) => return invalid(format!("{error:#}")),
    };
    let result = runtime.block_on(async move {
        crate::metrics::handle();
        let served = async {
            let running = server::start(config, instance).await?;
            termination_signal().await;
            tracing::info!("termination signal received");
            running.drain_and_stop().await
        }
        .await;
        if let Some(export) = export {
            export.shutdown().await;
        }
        served
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
