//! Logging: every line carries the service and instance, and inside a request its request id, in
//! text or JSON, to stdout and optionally to rotating files (`log.file.max_files` of them kept).
//!
//! With three instances writing to one log pipeline, a line without the instance is useless, and a
//! request cannot be followed without its id. tracing-subscriber's built-in formats cannot add a
//! constant field to every line, so this module has two small event formatters that add the service
//! fields and flatten the fields of the enclosing spans (`http.request.id`, `http.request.method`,
//! `http.route`, `trace.id`) into the line.
//!
//! Field names are OpenTelemetry's semantic conventions (`service.name`, `service.version`,
//! `service.instance.id`, `http.*`, `client.address`, `user.name`, `db.*`, the MCP conventions'
//! `mcp.method.name` and `gen_ai.tool.name`): the same names our trace spans carry, and names
//! Elastic Common Schema shares. The line's own keys — `@timestamp`, `log.level`, `log.logger`,
//! `message` — are ECS's (OpenTelemetry's log data model defines the record, not a JSON line),
//! which Elastic, Loki, Datadog and CloudWatch Logs Insights pick up without configuration.
//!
//! The access (`access`) and audit (`audit`) loggers are written at info whatever `log.level`
//! filters out of other loggers' lines, unless the level names them itself: an operator who turns
//! the noise down to `warn` must not lose the audit trail by accident.
//!
//! Secrets never reach here: callers log token *names* and usernames, never credentials or hashes,
//! and libraries that write secrets at debug level are capped ([`CAPPED`]) at every level — as are
//! those whose lines would feed themselves.

use std::{fmt, io, sync::Arc};

use serde_json::{Map, Value};
use tracing::{Event, Level, Metadata, Subscriber, field::Field};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::FilterExt,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter,
        format::{DefaultFields, JsonFields, Writer},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::{AccessLogMode, LogConfig, LogFormat, LogRotation};

/// Keeps the log writers' background threads alive; drop it last (it flushes what they hold).
pub struct LogGuard {
    _stdout: WorkerGuard,
    _file: Option<WorkerGuard>,
}

/// Lines a log writer holds before a request that logs waits for it (~6 MB of lines).
const BUFFERED_LINES: usize = 16_384;

/// `writer` behind a background thread, so that a request's access line costs a copy into a queue
/// instead of a `write(2)` under stdout's lock on the request path (~13% of a demo-KB `tools/call`'s
/// CPU under `perf`, the workers contending for the lock at 16 connections). The thread drains the
/// queue into a 64 KiB buffer and writes it whenever the queue runs empty: lines are out as soon as
/// the server is idle, many per `write(2)` under load. Never lossy: past [`BUFFERED_LINES`] the
/// logging request waits, as it did on the write itself — an audit line is not dropped to keep up.
/// What a SIGKILL can lose is what the queue held (the lines of the last moments); a normal stop
/// flushes them (the [`LogGuard`]).
fn background<W: io::Write + Send + 'static>(
    writer: W,
    name: &str,
) -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name(name)
        .finish(io::BufWriter::with_capacity(64 * 1024, writer))
}

/// Libraries capped at a level whatever `log.level` says:
/// - tokio-postgres writes every statement a model sent, literals included, at debug (a secret);
/// - inotify and notify write a line per file event at trace: with the log file in a watched
///   directory (stdout redirected beside the shared files, or `log.file.dir` there), each line is an
///   event and each event a line — ~12,000 lines/s and most of a core, with no traffic at all.
const CAPPED: &[(&str, Level)] = &[
    ("tokio_postgres", Level::INFO),
    ("inotify", Level::DEBUG),
    ("notify", Level::DEBUG),
];

/// Whether an event or span of `metadata` may be written at all (see [`CAPPED`]).
fn within_caps(metadata: &Metadata<'_>) -> bool {
    !CAPPED
        .iter()
        .any(|(target, cap)| metadata.target().starts_with(target) && metadata.level() > cap)
}

/// `log.level`, plus the access and audit loggers at info unless the level names them.
fn level_filter(config: &LogConfig) -> EnvFilter {
    let mut directives = config.level.clone();
    let mut always = vec!["audit"];
    if config.access.mode != AccessLogMode::Off {
        always.push("access");
    }
    for logger in always {
        let named = config
            .level
            .split(',')
            .any(|directive| directive.trim().split(['=', '[']).next() == Some(logger));
        if !named {
            directives.push_str(&format!(",{logger}=info"));
        }
    }
    EnvFilter::try_new(&directives).expect("log.level validated with the config")
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
    let filter = || level_filter(config).and(tracing_subscriber::filter::filter_fn(within_caps));
    let instance: Arc<str> = instance.into();
    let (stdout, stdout_guard) = background(io::stdout(), "log-stdout");
    let mut layers: Vec<Box<dyn Layer<_> + Send + Sync>> = vec![
        layer(config.format, instance.clone(), stdout)
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
        let mut appender = tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(rotation)
            .filename_prefix(&config.file.prefix);
        if config.file.max_files > 0 {
            appender = appender.max_log_files(config.file.max_files);
        }
        let appender = appender.build(dir).map_err(|e| anyhow::anyhow!("log.file: {e}"))?;
        let (writer, file_guard) = background(appender, "log-file");
        guard = Some(file_guard);
        layers.push(layer(config.format, instance, writer).with_filter(filter()).boxed());
    }
    layers.extend(extra);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging already initialised: {e}"))?;
    Ok(LogGuard {
        _stdout: stdout_guard,
        _file: guard,
    })
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

/// `{"@timestamp","log.level","log.logger","service.name","service.version","service.instance.id",
/// span fields..., "message", event fields...}`.
struct JsonLine {
    instance: Arc<str>,
}

const SERVICE_NAME: &str = "postgres-mcp";
const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");

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
            "@timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("log.level".into(), meta.level().as_str().to_ascii_lowercase().into());
        line.insert("log.logger".into(), meta.target().into());
        line.insert("service.name".into(), SERVICE_NAME.into());
        line.insert("service.version".into(), SERVICE_VERSION.into());
        line.insert("service.instance.id".into(), Value::String(self.instance.to_string()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    // `otel.name`/`otel.kind` steer the span exporter; they say nothing a line needs.
                    line.extend(map.into_iter().filter(|(key, _)| !key.starts_with("otel.")));
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

/// `2026-11-25T10:00:00.123456Z  INFO service.instance.id=mcp-1 http.request.id=… logger: message
/// key=value` (the service name and version are in every JSON line; a human reading text knows them).
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
        write!(
            writer,
            "{now} {:>5} service.instance.id={}",
            meta.level(),
            self.instance
        )?;
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
