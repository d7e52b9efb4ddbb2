//! OpenTelemetry span export over OTLP/HTTP (protobuf), off unless `trace.otlp_endpoint` is set.
//!
//! The spans are the `tracing` spans the code already opens (request, auth, MCP, tool, kb.search,
//! db.query, db.schema); `tracing-opentelemetry` turns them into OpenTelemetry spans, so there is one
//! instrumentation and no second API to keep in step. [`start`] builds what `telemetry::init` adds to
//! its layer list, and a [`TraceExport`] to flush at shutdown.
//!
//! Shaped so that export can never hurt a request:
//! - spans are queued in memory ([`MAX_QUEUE`] at most; past that they are dropped, never waited for)
//!   and sent in batches by one task on the server's tokio runtime, so a request never waits on the
//!   collector, and a collector that is down or slow costs a failed background POST per batch;
//! - the HTTP client is the one the server already builds (reqwest 0.13, rustls with the ring
//!   provider of [`crate::tls`]), with a timeout: no gRPC stack, no second TLS library;
//! - sampling is parent-based: a caller's `traceparent` decides, else `trace.sample_ratio` of new
//!   traces; the trace ids in log lines exist either way;
//! - only spans and events of this crate at `info` or above are exported (the dependencies' own
//!   spans — hyper, tokio-postgres — would multiply the volume and say nothing per request).
//!
//! A collector that stops answering is seen, not guessed: every batch is counted by outcome
//! (`pgmcp_trace_export_batches_total{outcome}`, `pgmcp_trace_spans_exported_total`), and the first
//! failure after a success (and the first success after failures) is logged once — a line per failed
//! batch would log every 2 s for as long as the collector is down.
//!
//! The resource names the instance (`service.instance.id`) as every log line and `X-Instance-Id` do.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context;
use opentelemetry::{KeyValue, trace::TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    runtime::Tokio,
    trace::{
        BatchConfigBuilder, Sampler, SdkTracerProvider, SpanData, SpanExporter,
        span_processor_with_async_runtime::BatchSpanProcessor,
    },
};
use tracing::{Level, Subscriber};
use tracing_subscriber::{Layer, filter::Targets, registry::LookupSpan};

use crate::config::TraceConfig;

/// Spans held for export at most; more are dropped (counted by the SDK) rather than waited for.
pub const MAX_QUEUE: usize = 4096;

/// How long one POST to the collector may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often queued spans are sent.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(2);

/// How long the shutdown waits for the last spans to be sent.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter's pipeline, kept to flush it at shutdown.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

/// With `trace.otlp_endpoint` set: the layer that exports this crate's spans, and its
/// [`TraceExport`]; `None` when export is off. Must run inside the tokio runtime that will serve
/// (the batch task is spawned on it). Errors: the endpoint cannot be made into a URL, or the HTTP
/// client cannot be built.
#[allow(clippy::type_complexity)]
pub fn start<S>(
    config: &TraceConfig,
    instance: &str,
) -> anyhow::Result<Option<(Box<dyn Layer<S> + Send + Sync>, TraceExport)>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Some(endpoint) = config.endpoint() else {
        return Ok(None);
    };
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .context("trace export: HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .context("trace.otlp_endpoint")?;
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(MAX_QUEUE)
        .with_scheduled_delay(EXPORT_INTERVAL)
        .with_max_export_timeout(EXPORT_TIMEOUT)
        .build();
    let processor = BatchSpanProcessor::builder(Counted::new(exporter), Tokio)
        .with_batch_config(batches)
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance.to_string()),
        ])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("postgres-mcp");
    let ours = Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(ours)
        .boxed();
    Ok(Some((layer, TraceExport { provider })))
}

impl TraceExport {
    /// Sends what is queued and stops the batch task, waiting at most [`SHUTDOWN_TIMEOUT`]. Call it inside
    /// the runtime, before the runtime ends: the batch task runs there.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's own timeout does not cover a POST already in flight to a collector that does
        // not answer; this one does (that POST ends at its EXPORT_TIMEOUT in the background).
        let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        let outcome = tokio::time::timeout(SHUTDOWN_TIMEOUT, flush).await;
        if !matches!(outcome, Ok(Ok(Ok(())))) {
            tracing::warn!("trace export: the last spans could not be sent");
        }
    }
}

/// An exporter whose batches are counted and whose failures are logged on transitions.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    failing: AtomicBool,
}

impl<E> Counted<E> {
    fn new(inner: E) -> Counted<E> {
        Counted {
            inner,
            failing: AtomicBool::new(false),
        }
    }

    /// Counts one batch of `spans` and logs a change between succeeding and failing.
    fn record(&self, spans: usize, outcome: &OTelSdkResult) {
        let failed = outcome.is_err();
        let label = if failed { "failed" } else { "ok" };
        metrics::counter!("pgmcp_trace_export_batches_total", "outcome" => label).increment(1);
        if !failed {
            metrics::counter!("pgmcp_trace_spans_exported_total").increment(spans as u64);
        }
        if self.failing.swap(failed, Ordering::Relaxed) != failed {
            match outcome {
                Err(error) => {
                    tracing::warn!(%error, "trace export: the collector refused or did not answer; spans are being dropped")
                }
                Ok(()) => tracing::info!("trace export: the collector answers again"),
            }
        }
    }
}

/// One batch being exported: counted when it ends, and counted as timed out when the batch
/// processor gives up on it first (its `max_export_timeout` drops the export future, so code after
/// the `.await` would never run for exactly the collector that does not answer).
struct InFlight<'a, E> {
    exporter: &'a Counted<E>,
    spans: usize,
    ended: bool,
}

impl<E> InFlight<'_, E> {
    fn end(mut self, outcome: &OTelSdkResult) {
        self.ended = true;
        self.exporter.record(self.spans, outcome);
    }
}

impl<E> Drop for InFlight<'_, E> {
    fn drop(&mut self) {
        if !self.ended {
            self.exporter
                .record(self.spans, &Err(OTelSdkError::Timeout(EXPORT_TIMEOUT)));
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let in_flight = InFlight {
            exporter: self,
            spans: batch.len(),
            ended: false,
        };
        let outcome = self.inner.export(batch).await;
        in_flight.end(&outcome);
        outcome
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// `<endpoint>/v1/traces`, unless the endpoint already names that path.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
    }
}
