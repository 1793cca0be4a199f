//! Fault injection and the request log, for client tests.
//!
//! `POST /dev/faults {"path_prefix":"/v1/convai/agents","method"?:"GET","body_contains"?:"..",
//! "responses":[..]}` queues scripted responses; each matching request (`body_contains`: its raw
//! body includes that text, so concurrent tests can target their own requests) takes the next
//! one (in order) before normal handling
//! resumes. An entry is `{"status":429,"headers":{..},"body":<json or string>}`, `{"delay_ms":N}`
//! (sleep, then handle normally; may be combined with a status), or `{"raw":"not json"}`
//! (a malformed body, status 200 unless given). `DELETE /dev/faults` clears the queues.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::{to_bytes, Body},
    extract::{Query, Request, State},
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{dev_error, ElevenLabsSim, BODY_LIMIT, REQUEST_LOG_LIMIT};

/// One scripted response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FaultResponse {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// A JSON value is sent as JSON; a JSON string is sent as plain text.
    #[serde(default)]
    pub body: Option<Value>,
    /// Sent verbatim with `content-type: application/json` (for malformed-body tests).
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// Scripted responses for requests whose path starts with `path_prefix` (and, if given, whose
/// method is `method`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FaultRule {
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub body_contains: Option<String>,
    pub responses: std::collections::VecDeque<FaultResponse>,
}

fn default_prefix() -> String {
    "/v1".into()
}

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

impl FaultResponse {
    /// The scripted response, or None when this entry only delays.
    fn to_response(&self) -> Option<Response> {
        if self.status.is_none() && self.body.is_none() && self.raw.is_none() {
            return None;
        }
        let status = self
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = match (&self.raw, &self.body) {
            (Some(raw), _) => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                raw.clone(),
            )
                .into_response(),
            (None, Some(Value::String(text))) => (status, text.clone()).into_response(),
            (None, Some(body)) => (status, Json(body.clone())).into_response(),
            (None, None) => (status, Json(default_body(status))).into_response(),
        };
        for (name, value) in &self.headers {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        Some(response)
    }
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

/// Outermost layer: records `/v1` requests and serves queued faults before normal handling.
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
    let fault = {
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
        let method = parts.method.as_str();
        let body_text = String::from_utf8_lossy(&bytes);
        let next_fault = state
            .faults
            .iter_mut()
            .find(|rule| {
                path.starts_with(&rule.path_prefix)
                    && rule
                        .method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(method))
                    && rule
                        .body_contains
                        .as_deref()
                        .is_none_or(|text| body_text.contains(text))
                    && !rule.responses.is_empty()
            })
            .and_then(|rule| rule.responses.pop_front());
        state.faults.retain(|rule| !rule.responses.is_empty());
        next_fault
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match fault.to_response() {
        Some(response) => response,
        None => next.run(request).await,
    }
}

pub(super) async fn add_faults(
    State(sim): State<Arc<ElevenLabsSim>>,
    body: axum::body::Bytes,
) -> Response {
    let rule: FaultRule = match serde_json::from_slice(&body) {
        Ok(rule) => rule,
        Err(e) => return dev_error(StatusCode::BAD_REQUEST, format!("bad fault script: {e}")),
    };
    if let Some(bad) = rule
        .responses
        .iter()
        .filter_map(|r| r.status)
        .find(|s| StatusCode::from_u16(*s).is_err())
    {
        return dev_error(StatusCode::BAD_REQUEST, format!("bad status {bad}"));
    }
    let queued = rule.responses.len();
    let mut state = sim.state();
    if queued > 0 {
        state.faults.push(rule);
    }
    let pending: usize = state.faults.iter().map(|r| r.responses.len()).sum();
    Json(json!({ "queued": queued, "pending": pending })).into_response()
}

pub(super) async fn clear_faults(State(sim): State<Arc<ElevenLabsSim>>) -> Response {
    let cleared: usize = std::mem::take(&mut sim.state().faults)
        .iter()
        .map(|r| r.responses.len())
        .sum();
    Json(json!({ "cleared": cleared })).into_response()
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
