//! `GET /health` and `GET /health/details`: what a load balancer and an operator need, without
//! touching disk or network.
//!
//! Both answer 200 while serving and 503 `{"status":"draining"}` from the moment SIGTERM arrives, so
//! a balancer stops routing here before the listener closes.
//!
//! They are split by audience (issue #18). `/health` is public (nginx and HAProxy pass it through,
//! an ALB polls it): it says only `{"status":"ok"}` or `{"status":"draining"}`, because everything
//! else — the instance id, the version, file generations and counts, the last reload error, the
//! database's state — tells an outsider what runs here and what is broken. `/health/details` carries
//! all of that for operators and alerts, on the same listener and, like `/metrics`, internal: the
//! shipped nginx and HAProxy configs answer 404 for it, so it is reached on the instance's own
//! address (a scrape, `curl mcp-1:8080/health/details`, kubectl port-forward). Comparing
//! `auth.generation` and `kb.generation` across instances tells whether they all converged on the
//! same files.

use std::{sync::Arc, time::Instant};

use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
    web::Json,
};
use serde_json::{Value, json};

use crate::{auth::Authenticator, instance::InstanceId, kb::KbFile, postgres::Database, shutdown::Draining};

/// `GET /health`, public: `{"status":"ok"}` (200) or `{"status":"draining"}` (503), nothing else.
#[derive(Clone)]
pub struct Health {
    pub draining: Draining,
}

/// `GET /health/details`, internal: the status plus the instance, version, uptime, each watched
/// file's generation and last error, and the database's state.
pub struct HealthDetails {
    pub instance: InstanceId,
    pub started: Instant,
    pub draining: Draining,
    pub auth: Arc<Authenticator>,
    pub kb: Option<Arc<KbFile>>,
    pub database: Option<Arc<Database>>,
}

impl poem::Endpoint for Health {
    type Output = Response;

    async fn call(&self, _: Request) -> poem::Result<Response> {
        Ok(if self.draining.is_draining() {
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "draining"}))
        } else {
            answer(StatusCode::OK, json!({"status": "ok"}))
        })
    }
}

impl poem::Endpoint for HealthDetails {
    type Output = Response;

    async fn call(&self, _: Request) -> poem::Result<Response> {
        Ok(self.report())
    }
}

impl HealthDetails {
    fn report(&self) -> Response {
        if self.draining.is_draining() {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "draining", "instance": self.instance.as_str()}),
            );
        }
        let kb = self.kb.as_ref().map(|kb| {
            let status = kb.status();
            let current = kb.current();
            json!({
                "generation": status.generation,
                "documents": current.documents,
                "chunks": current.chunks,
                "built_at": current.built_at,
                "loaded_at": status.loaded_at,
                "last_error": status.last_error,
            })
        });
        answer(
            StatusCode::OK,
            json!({
                "status": "ok",
                "instance": self.instance.as_str(),
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": self.started.elapsed().as_secs(),
                "auth": self.auth.health(),
                "kb": kb,
                "database": self.database.as_ref().map(|db| db.status()),
            }),
        )
    }
}

/// A JSON answer no cache keeps: a status is only true when it is read.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}
