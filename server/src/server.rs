//! Start-up and shutdown of one instance: load every file, bind, serve, drain.
//!
//! [`start`] is used by the binary and by the tests alike (two instances in one test process share
//! nothing but files, exactly like two pods), so what the tests prove is what `serve` runs.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::{
    app,
    auth::{Authenticator, limiter::FailedAuthLimiter},
    config::Config,
    connections,
    kb::store::KbLoader,
    mcp::tools::ToolTable,
    net::TrustedProxies,
    postgres::Database,
    shutdown::{Draining, ShutdownTrigger},
    state::{AppState, InstanceId},
    watch::{Reloadable, WatchEngine, Watched},
};

/// A running instance.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    trigger: ShutdownTrigger,
    task: JoinHandle<std::io::Result<()>>,
    _watch: WatchEngine,
}

/// Builds the shared state: every configured file must load, or start-up fails naming it.
pub fn build_state(config: Config, instance: InstanceId) -> anyhow::Result<AppState> {
    let auth = Authenticator::open(&config.auth).map_err(anyhow::Error::msg)?;
    let kb = match &config.kb.path {
        Some(path) => {
            let loader = KbLoader {
                copy_to_local: config.kb.copy_to_local,
                copy_dir: crate::kb::local_copies::private_copy_dir()
                    .context("cannot create the directory for local kb.db copies")?,
            };
            Some(Watched::open("kb", path, loader).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let database = Database::open(&config.database).map_err(anyhow::Error::msg)?;
    let trusted_proxies = TrustedProxies::parse(&config.auth.trusted_proxies).map_err(anyhow::Error::msg)?;
    Ok(AppState {
        instance,
        started: Instant::now(),
        draining: Draining::default(),
        limiter: FailedAuthLimiter::new(&config.auth.rate_limit),
        trusted_proxies,
        allowed_hosts: config.effective_allowed_hosts(),
        tools: ToolTable::standard(kb.is_some(), database.is_some()),
        kb,
        database,
        auth,
        config,
    })
}

/// Loads everything, binds `config.listen` and serves in the background.
pub async fn start(config: Config, instance: InstanceId) -> anyhow::Result<RunningServer> {
    let listen = config.listen;
    let grace = config.shutdown.grace.get();
    let state = Arc::new(build_state(config, instance)?);
    let (trigger, shutdown) = ShutdownTrigger::new();

    let mut files: Vec<Arc<dyn Reloadable>> = state.auth.watched_files();
    if let Some(kb) = &state.kb {
        files.push(kb.clone());
    }
    files.extend(state.database.as_ref().and_then(|db| db.watched_file()));
    let watch = WatchEngine::start(files, &state.config.watch, shutdown.clone());
    crate::metrics::spawn_upkeep(shutdown.clone());
    if let Some(database) = &state.database {
        database.spawn_health_checks(shutdown.clone());
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let endpoint = app::routes(state.clone());
    let task = tokio::spawn(connections::serve(listener, endpoint, shutdown, grace));
    tracing::info!(%addr, instance = %state.instance, tools = state.tools.list().len(), "listening");
    Ok(RunningServer {
        addr,
        state,
        trigger,
        task,
        _watch: watch,
    })
}

impl RunningServer {
    /// The drain sequence: 503 on /health at once, keep serving for `drain_delay`, then stop
    /// accepting and let in-flight requests finish within `grace`.
    pub async fn drain_and_stop(self) -> anyhow::Result<()> {
        self.state.draining.start();
        metrics::gauge!("pgmcp_draining").set(1.0);
        let delay = self.state.config.shutdown.drain_delay.get();
        tracing::info!(drain_delay = ?delay, grace = ?self.state.config.shutdown.grace.get(), "draining: /health now answers 503");
        tokio::time::sleep(delay).await;
        self.stop().await
    }

    /// Stops accepting at once and waits for in-flight requests (up to `grace`).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.trigger();
        self.task
            .await
            .context("server task panicked")?
            .context("server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}
