//! `postgres-mcp serve`: logging, the runtime, and the server until SIGTERM, then the drain.

use std::process::ExitCode;

use clap::Args;

use super::config::{ConfigFlags, invalid};
use crate::{instance::InstanceId, server, shutdown::termination_signal, telemetry};

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
    let _log_guard = match telemetry::init(&config.log, instance.as_str()) {
        Ok(guard) => guard,
        Err(error) => return invalid(format!("{error:#}")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let result = runtime.block_on(async move {
        crate::metrics::handle();
        let running = server::start(config, instance).await?;
        termination_signal().await;
        tracing::info!("termination signal received");
        running.drain_and_stop().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
