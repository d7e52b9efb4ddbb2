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
//!     -> GET  /.well-known/oauth-protected-resource[/mcp]  auth::oauth (when auth.oauth.mode is set)
//!     -> GET  /.well-known/oauth-authorization-server     } the built-in authorization server
//!     -> POST /oauth/register, /oauth/token  origin::Policy } (auth.oauth.mode: builtin), each step
//!     -> GET, POST /oauth/authorize   origin::Policy        } served by any instance
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
    mcp::{self, ResourceTable, ToolTable, audit::Audit, db_resources, db_tools, kb_tool},
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

/// The resources this instance offers: the database's when it is configured, none otherwise.
pub fn resources(files: &Files) -> ResourceTable {
    let mut table = ResourceTable::default();
    if let Some(database) = &files.database {
        db_resources::register(&mut table, database.clone());
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
) -> anyhow::Result<impl Endpoint + use<>> {
    let max_body = config.http.max_body.bytes();
    let origin = origin::Policy::new(config);
    let oauth = auth::oauth::ResourceServer::new(&config.auth.oauth, config.public_url.as_deref(), files.auth.clone())
        .map_err(|e| anyhow::anyhow!("auth.oauth: {e}"))?;
    let gate = auth::Gate::new(files.auth.clone(), &config.auth)?.with_oauth(oauth.clone());
    let mcp = Arc::new(mcp::Endpoint::new(tools, resources(files), instance.clone(), max_body));
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
    let mut route = Route::new();
    if let Some(resource) = &oauth {
        route = oauth_routes(route, config, resource, files, &gate, &origin, max_body);
    }
    Ok(route
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

/// The OAuth routes: the protected resource metadata always, the built-in authorization server's
/// endpoints in builtin mode.
fn oauth_routes(
    mut route: Route,
    config: &Config,
    resource: &Arc<auth::oauth::ResourceServer>,
    files: &Files,
    gate: &auth::Gate,
    origin: &origin::Policy,
    max_body: u64,
) -> Route {
    use auth::oauth;
    let metadata = oauth::RESOURCE_METADATA_PATH;
    for path in [
        metadata.to_string(),
        format!("{metadata}/mcp"),
        format!("{metadata}/mcp/v1"),
    ] {
        route = route.at(
            path,
            allow(
                get(oauth::ResourceMetadata(resource.clone())),
                "GET, HEAD",
                "metadata answers GET",
            ),
        );
    }
    if config.auth.oauth.mode != crate::config::OAuthMode::Builtin {
        return route;
    }
    let server =
        oauth::AuthorizationServer::new(&config.auth.oauth, resource, files.auth.clone(), gate.clone(), max_body);
    route
        .at(
            oauth::SERVER_METADATA_PATH,
            allow(
                get(oauth::ServerMetadata(server.clone())),
                "GET, HEAD",
                "metadata answers GET",
            ),
        )
        .at(
            oauth::REGISTER_PATH,
            allow(
                post(oauth::Register { server: server.clone() }),
                "POST",
                "POST client metadata as JSON to register (RFC 7591)",
            )
            .with(Layer(origin.clone())),
        )
        .at(
            oauth::AUTHORIZE_PATH,
            allow(
                get(oauth::Authorize { server: server.clone() }).post(oauth::Authorize { server: server.clone() }),
                "GET, HEAD, POST",
                "GET starts a sign-in; the sign-in form POSTs",
            )
            .with(Layer(origin.clone())),
        )
        .at(
            oauth::TOKEN_PATH,
            allow(
                post(oauth::Token { server }),
                "POST",
                "POST a form with grant_type to get tokens",
            )
            .with(Layer(origin.clone())),
        )
}

/// A route's method table, a method it lacks answered with 405, `Allow: allow` and the JSON body
/// saying `message` (poem's own 405 has neither). `GET` routes answer `HEAD` too (poem runs the
/// `GET` endpoint without the body), so their `allow` names both.
fn allow(methods: impl Endpoint, allow: &'static str, message: &'static str) -> impl Endpoint {
    methods.catch_error(move |_: MethodNotAllowedError| async move { http_error::method_not_allowed(allow, message) })
}
