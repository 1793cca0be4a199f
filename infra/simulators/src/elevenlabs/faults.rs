//! The request log, and the ElevenLabs side of fault injection (see [`crate::faults`] for the
//! script format): `/v1` requests are recorded, then take the next matching scripted response;
//! a bare status gets ElevenLabs' usual error body.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Query, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::{json, Value};

use super::{dev_error, ElevenLabsSim, BODY_LIMIT, REQUEST_LOG_LIMIT};

/// One request received under `/v1` (what `GET /dev/requests` lists).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The JSON body, the text of a non-JSON body, or null when empty.
    pub body: Value,
    pub at_unix_ms: i64,
}

/// What ElevenLabs answers for a status when the script gives no body.
fn default_body(status: StatusCode) -> Value {
    let (code, message) = match status.as_u16() {
        401 => ("invalid_api_key", "Invalid API key"),
        404 => ("not_found", "Not found"),
        408 => ("request_timeout", "Request timed out"),
        409 => ("conflict", "Conflict"),
        429 => (
            "rate_limit_exceeded",
            "Too many requests. Please slow down (injected by the simulator).",
        ),
        500..=599 => (
            "internal_server_error",
            "Internal server error (injected by the simulator)",
        ),
        _ => ("error", "Error injected by the simulator"),
    };
    let mut detail = json!({ "status": code, "message": message });
    if status == StatusCode::TOO_MANY_REQUESTS {
        detail["code"] = json!(code);
        detail["request_id"] = json!(uuid::Uuid::new_v4().simple().to_string());
    }
    json!({ "detail": detail })
}

/// Outermost layer: records `/v1` requests and plays queued faults before normal handling.
pub(super) async fn record_and_inject(
    State(sim): State<Arc<ElevenLabsSim>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return dev_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let recorded_body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    {
        let mut state = sim.state();
        if state.requests.len() >= REQUEST_LOG_LIMIT {
            state.requests.pop_front();
        }
        state.requests.push_back(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            body: recorded_body,
            at_unix_ms: chrono::Utc::now().timestamp_millis(),
        });
    }
    let fault = sim.faults.take(parts.method.as_str(), &path, &bytes);
    let request = Request::from_parts(parts, Body::from(bytes));
    match fault {
        Some(fault) => fault.play(request, next, default_body).await,
        None => next.run(request).await,
    }
}

pub(super) async fn add_faults(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> Response {
    sim.faults.add(&body)
}

pub(super) async fn clear_faults(State(sim): State<Arc<ElevenLabsSim>>) -> Response {
    sim.faults.clear()
}

pub(super) async fn list_requests(
    State(sim): State<Arc<ElevenLabsSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let prefix = query.get("path_prefix").map_or("", String::as_str);
    Json(sim.requests(prefix)).into_response()
}

pub(super) async fn clear_requests(State(sim): State<Arc<ElevenLabsSim>>) -> Response {
    let cleared = std::mem::take(&mut sim.state().requests).len();
    Json(json!({ "cleared": cleared })).into_response()
}
