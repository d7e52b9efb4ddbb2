//! Logging: every line carries the instance id, and inside a request its `request_id`, in text or
//! JSON, to stdout and optionally to rotating files.
//!
//! With three instances writing to one log pipeline, a line without `instance` is useless, and a
//! request cannot be followed without `request_id`. tracing-subscriber's built-in formats cannot add a
//! constant field to every line, so this module has two small event formatters that add `instance`
//! and flatten the fields of the enclosing spans (`request_id`, `method`, `path`) into the line.
//! Secrets never reach here: callers log token *names* and usernames, never credentials or hashes.

use std::{fmt, io, sync::Arc};

use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter,
        format::{DefaultFields, JsonFields, Writer},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::{LogConfig, LogFormat, LogRotation};

/// Keeps the file writer's background thread alive; drop it last (it flushes).
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber.
pub fn init(config: &LogConfig, instance: &str) -> anyhow::Result<LogGuard> {
    init_with(config, instance, None)
}

/// [`init`] with one more layer beside the log writers: the span exporter of `trace_export`.
pub fn init_with(
    config: &LogConfig,
    instance: &str,
    extra: Option<Box<dyn Layer<Registry> + Send + Sync>>,
) -> anyhow::Result<LogGuard> {
    let filter = || EnvFilter::try_new(&config.level).expect("log.level validated with the config");
    let instance: Arc<str> = instance.into();
    let mut layers: Vec<Box<dyn Layer<_> + Send + Sync>> = vec![
        layer(config.format, instance.clone(), io::stdout)
            .with_filter(filter())
            .boxed(),
    ];
    let mut guard = None;
    if let Some(dir) = &config.file.dir {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("log.file.dir {}: {e}", dir.display()))?;
        let rotation = match config.file.rotation {
            LogRotation::Daily => tracing_appender::rolling::Rotation::DAILY,
            LogRotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
            LogRotation::Never => tracing_appender::rolling::Rotation::NEVER,
        };
        let appender = tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(rotation)
            .filename_prefix(&config.file.prefix)
            .build(dir)
            .map_err(|e| anyhow::anyhow!("log.file: {e}"))?;
        let (writer, file_guard) = tracing_appender::non_blocking(appender);
        guard = Some(file_guard);
        layers.push(layer(config.format, instance, writer).with_filter(filter()).boxed());
    }
    layers.extend(extra);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging already initialised: {e}"))?;
    Ok(LogGuard { _file: guard })
}

fn layer<S, W>(format: LogFormat, instance: Arc<str>, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine { instance })
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .fmt_fields(DefaultFields::new())
            .event_format(TextLine { instance })
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// `{"timestamp","level","instance","target", span fields..., "message", event fields...}`.
struct JsonLine {
    instance: Arc<str>,
}

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("instance".into(), Value::String(self.instance.to_string()));
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(map);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

/// `2026-11-25T10:00:00.123456Z  INFO instance=mcp-1 request_id=… target: message key=value`.
struct TextLine {
    instance: Arc<str>,
}

impl<S> FormatEvent<S, DefaultFields> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, DefaultFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        write!(writer, "{now} {:>5} instance={}", meta.level(), self.instance)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<DefaultFields>>()
                    && !fields.is_empty()
                {
                    write!(writer, " {fields}")?;
                }
            }
        }
        write!(writer, " {}: ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
