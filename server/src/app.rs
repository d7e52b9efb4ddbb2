//! The route table and the middleware order — the whole request path on one screen — and what each
//! route is handed: its own typed handle, never a shared bag.
//!
//! ```text
//! TCP -> poem -> RequestContext (request id, span, timeout, X-Instance-Id, metrics, access log)
//!     -> GET  /health                          Health: no auth, no I/O, status only (public)
//!     -> GET  /health/details                  HealthDetails: instance, files, database (internal:
//!                                              the shipped balancers answer 404 for it)
//!     -> GET  /livez, /readyz                  probes::{Livez, Readyz}: no auth, no I/O (kube-apiserver's format)
//!     -> GET  /metrics                         Prometheus text (keep it off the public listener: nginx does)
//!     -> POST /api/login   origin::Policy   -> auth::Login (body limit, limiter admits, bcrypt)
//!     -> POST /mcp, /mcp/v1 origin::Policy  -> auth::Gate (credential first; only failures reach the
//!                                              limiter) -> mcp::Endpoint (body limit, tool table)
//!        any other method on a route -> 405 + Allow; any other path -> 404 (JSON bodies, http_error)
//! ```

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, EndpointExt, Route,
    error::{MethodNotAllowedError, NotFoundError},
    get, post,
};

use crate::{
    access_log::AccessLog,
    auth::{self, Authenticator},
    config::Config,
    health::{Health, HealthDetails},
    http_error,
    instance::InstanceId,
    kb::KbFile,
    layer::Layer,
    mcp::{self, ToolTable, audit::Audit, db_tools, kb_tool},
    metrics, origin,
    postgres::Database,
    probes::{Heartbeat, Livez, Readyz},
    request_context::RequestContext,
    shutdown::Draining,
};

/// The watched files an instance serves, loaded and valid.
pub struct Files {
    pub auth: Arc<Authenticator>,
    pub kb: Option<Arc<KbFile>>,
    pub database: Option<Arc<Database>>,
}

/// The tools this instance offers: each family registered with the handle it uses, or not at all.
pub fn tools(files: &Files, config: &Config) -> ToolTable {
    let mut table = ToolTable::default();
    if let Some(kb) = &files.kb {
        kb_tool::register(&mut table, kb.clone());
    }
    if let Some(database) = &files.database {
        db_tools::register(&mut table, database.clone(), Audit::new(&config.log.audit));
    }
    table
}

/// The routes, each with what it reads.
pub fn routes(
    config: &Config,
    instance: &InstanceId,
    draining: &Draining,
    files: &Files,
    tools: ToolTable,
) -> Result<impl Endpoint + use<>, auth::proxies::InvalidNetwork> {
    let max_body = config.http.max_body.bytes();
    let origin = origin::Policy::new(config);
    let gate = auth::Gate::new(files.auth.clone(), &config.auth)?;
    let mcp = Arc::new(mcp::Endpoint::new(tools, instance.clone(), max_body));
    let health = Health {
        draining: draining.clone(),
    };
    let health_details = HealthDetails {
        instance: instance.clone(),
        started: Instant::now(),
        draining: draining.clone(),
        auth: files.auth.clone(),
        kb: files.kb.clone(),
        database: files.database.clone(),
    };
    let heartbeat = Heartbeat::start();
    let livez = Livez {
        heartbeat: heartbeat.clone(),
    };
    let readyz = Readyz {
        heartbeat,
        draining: draining.clone(),
        auth: files.auth.clone(),
    };
    let mcp_route = || {
        allow(post(mcp.clone()), "POST", mcp::transport::STATELESS)
            .with(Layer(gate.clone()))
            .with(Layer(origin.clone()))
    };
    Ok(Route::new()
        .at("/health", allow(get(health), "GET, HEAD", "/health answers GET"))
        .at(
            "/health/details",
            allow(get(health_details), "GET, HEAD", "/health/details answers GET"),
        )
        .at("/livez", allow(get(livez), "GET, HEAD", "/livez answers GET"))
        .at("/readyz", allow(get(readyz), "GET, HEAD", "/readyz answers GET"))
        .at(
            "/metrics",
            allow(get(metrics::metrics_text), "GET, HEAD", "/metrics answers GET"),
        )
        .at(
            "/api/login",
            allow(
                post(gate.login(max_body)),
                "POST",
                "POST a JSON {\"username\", \"password\"} to log in",
            )
            .with(Layer(origin.clone())),
        )
        .at("/mcp", mcp_route())
        .at("/mcp/v1", mcp_route())
        .catch_error(|_: NotFoundError| async { http_error::not_found() })
        .with(Layer(RequestContext {
            instance: instance.clone(),
            draining: draining.clone(),
            timeout: config.http.request_timeout.get(),
            access_log: AccessLog::new(&config.log.access),
            proxies: gate.proxies(),
        })))
}

/// A route's method table, a method it lacks answered with 405, `Allow: allow` and the JSON body
/// saying `message` (poem's own 405 has neither). `GET` routes answer `HEAD` too (poem runs the
/// `GET` endpoint without the body), so their `allow` names both.
fn allow(methods: impl Endpoint, allow: &'static str, message: &'static str) -> impl Endpoint {
    methods.catch_error(move |_: MethodNotAllowedError| async move { http_error::method_not_allowed(allow, message) })
}
