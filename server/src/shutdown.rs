//! Graceful shutdown: the signal fan-out ([`Shutdown`]) and the draining flag ([`Draining`]).
//!
//! On SIGTERM a load balancer still believes this instance is healthy for a few seconds. So the
//! sequence is: flip [`Draining`] (`/health` answers 503 at once), keep serving for
//! `shutdown.drain_delay` while the balancer notices, then stop accepting connections and give
//! in-flight requests up to `shutdown.grace` before exiting 0. Kubernetes' `preStop` and
//! `terminationGracePeriodSeconds`, and the ALB's deregistration delay, are set to match.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Set once SIGTERM (or SIGINT) arrived; read by `/health` on every probe, so it is one atomic load.
/// Mirrored in the gauge `pgmcp_draining`, 0 from start-up so that a dashboard sees the series before
/// the first drain (an absent series cannot be told from a scrape that failed).
#[derive(Clone, Debug)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Not draining; sets `pgmcp_draining` to 0.
    pub fn new() -> Draining {
        metrics::gauge!("pgmcp_draining").set(0.0);
        Draining(Arc::default())
    }

    /// Starts draining; sets `pgmcp_draining` to 1.
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
        metrics::gauge!("pgmcp_draining").set(1.0);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Draining {
    fn default() -> Draining {
        Draining::new()
    }
}

/// Tells background tasks (the file watcher, ...) to stop. Cloneable; every clone sees the signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The sending side of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger { sender }, Shutdown { receiver })
    }

    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown was triggered (at once if it already was, or if the trigger is gone).
    pub async fn recv(&mut self) {
        let _ = self.receiver.wait_for(|stopped| *stopped).await;
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
