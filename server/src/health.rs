//! `GET /health`: what a load balancer and an operator need, without touching disk or network.
//!
//! 200 while serving, 503 `{"status":"draining"}` from the moment SIGTERM arrives, so the balancer
//! stops routing here before the listener closes. The body also shows each watched file's generation
//! and last error: comparing `auth.generation` and `kb.generation` across instances tells whether
//! they all converged on the same files.

use std::{sync::Arc, time::Instant};

use poem::{IntoResponse, Request, Response, http::StatusCode, web::Json};
use serde_json::json;

use crate::{auth::Authenticator, instance::InstanceId, kb::KbFile, postgres::Database, shutdown::Draining};

/// What `/health` reads, and nothing else.
pub struct Health {
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
        Ok(self.report())
    }
}

impl Health {
    fn report(&self) -> Response {
        if self.draining.is_draining() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "draining", "instance": self.instance.as_str()})),
            )
                .into_response();
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
        Json(json!({
            "status": "ok",
            "instance": self.instance.as_str(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs(),
            "auth": self.auth.health(),
            "kb": kb,
            "database": self.database.as_ref().map(|db| db.status()),
        }))
        .into_response()
    }
}
