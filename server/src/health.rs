//! `GET /health`: what a load balancer and an operator need, without touching disk or network.
//!
//! 200 while serving, 503 `{"status":"draining"}` from the moment SIGTERM arrives, so the balancer
//! stops routing here before the listener closes. The body also shows each watched file's generation
//! and last error: comparing `auth.generation` and `kb.generation` across instances tells whether
//! they all converged on the same files.

use std::sync::Arc;

use poem::{IntoResponse, Response, handler, http::StatusCode, web::Data, web::Json};
use serde_json::json;

use crate::state::AppState;

#[handler]
pub fn health(Data(state): Data<&Arc<AppState>>) -> Response {
    if state.draining.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "instance": state.instance.as_str()})),
        )
            .into_response();
    }
    let kb = state.kb.as_ref().map(|kb| {
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
        "instance": state.instance.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "auth": state.auth.health(),
        "kb": kb,
        "database": state.database.as_ref().map(|db| db.status()),
    }))
    .into_response()
}
