//! Steady load through nginx: a few clients, each sending `tools/call` at a fixed pace, recording
//! every outcome. Paced (not flat out) so the run stays under nginx's per-client `limit_req` (all
//! test traffic comes from one address) and so counts are comparable between runs.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use crate::cluster::{RpcReply, search};

/// What the clients saw.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub sent: usize,
    pub succeeded: usize,
    /// (time since start, what went wrong)
    pub failures: Vec<(Duration, String)>,
    pub by_instance: BTreeMap<String, usize>,
    /// When each success was answered, by which instance (time since start).
    pub timeline: Vec<(Duration, String)>,
    /// How long each success took, from sending to the whole answer read (in answer order per
    /// client; merged unordered).
    pub latencies: Vec<Duration>,
}

/// A running load; `finish` stops it and collects the outcome.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<LoadOutcome>>,
    pub started: Instant,
}

impl Load {
    /// `clients` workers, each sending one request every `interval` to `{base}/mcp`.
    pub fn start(client: reqwest::Client, base: String, token: String, clients: usize, interval: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let workers = (0..clients)
            .map(|worker| {
                let (client, base, token, stop) = (client.clone(), base.clone(), token.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut outcome = LoadOutcome::default();
                    let mut ticker = tokio::time::interval(interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut id = (worker as u64) << 32;
                    while !stop.load(Ordering::Relaxed) {
                        ticker.tick().await;
                        id += 1;
                        outcome.sent += 1;
                        let began = Instant::now();
                        let sent = client
                            .post(format!("{base}/mcp"))
                            .bearer_auth(&token)
                            .header("Accept", "application/json, text/event-stream")
                            .header("MCP-Protocol-Version", "2025-11-25")
                            .json(&search(id, "replication lag"))
                            .send()
                            .await;
                        let at = started.elapsed();
                        match sent {
                            Err(error) => outcome.failures.push((at, format!("transport: {error}"))),
                            Ok(response) => match RpcReply::read(response).await {
                                Ok(reply) if reply.is_success() => {
                                    outcome.succeeded += 1;
                                    *outcome.by_instance.entry(reply.instance.clone()).or_default() += 1;
                                    outcome.timeline.push((at, reply.instance));
                                    outcome.latencies.push(began.elapsed());
                                }
                                Ok(reply) => outcome
                                    .failures
                                    .push((at, format!("HTTP {}: {}", reply.status, reply.body))),
                                Err(error) => outcome.failures.push((at, format!("body: {error}"))),
                            },
                        }
                    }
                    outcome
                })
            })
            .collect();
        Load { stop, workers, started }
    }

    /// Stops every client after its request in flight and merges what they saw.
    pub async fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = LoadOutcome::default();
        for worker in self.workers {
            let outcome = worker.await.expect("load worker panicked");
            total.sent += outcome.sent;
            total.succeeded += outcome.succeeded;
            total.failures.extend(outcome.failures);
            total.timeline.extend(outcome.timeline);
            total.latencies.extend(outcome.latencies);
            for (instance, count) in outcome.by_instance {
                *total.by_instance.entry(instance).or_default() += count;
            }
        }
        total.failures.sort_by_key(|(at, _)| *at);
        total.timeline.sort_by_key(|(at, _)| *at);
        total
    }
}
