//! Start-up and shutdown of one instance: load every file, bind, serve, drain.
//!
//! [`start`] is used by the binary and by the tests alike (two instances in one test process share
//! nothing but files, exactly like two pods), so what the tests prove is what `serve` runs.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::{
    app::{self, Files},
    auth::Authenticator,
    config::Config,
    connections,
    instance::InstanceId,
    kb::KbLoader,
    postgres::Database,
    shutdown::{Draining, ShutdownTrigger},
    watch::{Reloadable, WatchEngine, Watched},
};

/// A running instance.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub instance: InstanceId,
    /// Set by [`RunningServer::drain_and_stop`]; tests set it directly to see `/health` turn 503.
    pub draining: Draining,
    /// The auth files as this instance serves them (their `/health` section).
    pub auth: Arc<Authenticator>,
    drain_delay: Duration,
    grace: Duration,
    trigger: ShutdownTrigger,
    task: JoinHandle<std::io::Result<()>>,
    _watch: WatchEngine,
}

/// Loads every configured file; start-up fails naming the first that cannot be served.
pub fn open_files(config: &Config, instance: &InstanceId) -> anyhow::Result<Files> {
    let auth = Arc::new(Authenticator::open(&config.auth)?);
    let kb = match &config.kb.path {
        Some(path) => {
            let loader = KbLoader {
                copy_to_local: config.kb.copy_to_local,
                copy_dir: crate::kb::local_copies::private_copy_dir()
                    .context("cannot create the directory for local kb.db copies")?,
            };
            Some(Watched::open("kb", path, loader)?)
        }
        None => None,
    };
    let database = Database::open_named(&config.database, &crate::correlation::pool_application_name(instance))?;
    Ok(Files { auth, kb, database })
}

/// Loads everything, binds `config.listen` and serves in the background.
pub async fn start(config: Config, instance: InstanceId) -> anyhow::Result<RunningServer> {
    // Before anything sets a gauge (loading the files sets the KB and token ones): values recorded
    // before the recorder exists are lost.
    crate::metrics::handle();
    let files = open_files(&config, &instance)?;
    let draining = Draining::new();
    let (trigger, shutdown) = ShutdownTrigger::new();

    let mut watched: Vec<Arc<dyn Reloadable>> = files.auth.watched_files();
    if let Some(kb) = &files.kb {
        watched.push(kb.clone());
    }
    watched.extend(files.database.as_ref().and_then(|db| db.watched_file()));
    let watch = WatchEngine::start(watched, &config.watch, shutdown.clone());
    crate::metrics::spawn_upkeep(shutdown.clone());
    crate::metrics::start_server_counters();
    if let Some(database) = &files.database {
        database.spawn_health_checks(shutdown.clone());
        metrics::counter!("pgmcp_db_pool_acquire_timeouts_total").increment(0);
        // The pool's occupancy is read at every scrape, until this instance's database is dropped.
        let database = Arc::downgrade(database);
        crate::metrics::sample_at_scrape(move || database.upgrade().map(|db| db.record_pool_metrics()).is_some());
    }

    let listen = config.listen;
    let listener = crate::listener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let tools = app::tools(&files, &config);
    let offered = tools.len();
    let endpoint = app::routes(&config, &instance, &draining, &files, tools)?;
    let grace = config.shutdown.grace.get();
    let limits = connections::Limits {
        idle: config.http.idle_timeout.get(),
        head: config.http.header_read_timeout.get(),
        max_open: config.http.max_connections,
    };
    let task = tokio::spawn(connections::serve(listener, endpoint, shutdown, grace, limits));
    tracing::info!(%addr, %instance, tools = offered, "listening");
    Ok(RunningServer {
        addr,
        instance,
        draining,
        auth: files.auth,
        drain_delay: config.shutdown.drain_delay.get(),
        grace,
        trigger,
        task,
        _watch: watch,
    })
}

impl RunningServer {
    /// The drain sequence: 503 on /health at once, keep serving for `drain_delay`, then stop
    /// accepting and let in-flight requests finish within `grace`.
    pub async fn drain_and_stop(self) -> anyhow::Result<()> {
        self.draining.start();
        let delay = self.drain_delay;
        tracing::info!(drain_delay = ?delay, grace = ?self.grace, "draining: /health now answers 503");
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
