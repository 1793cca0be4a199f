//! The log of `/v1` requests (`GET|DELETE /dev/requests`) and the Stripe side of fault injection
//! (`POST|DELETE /dev/faults`, script format in [`crate::faults`]): a bare status gets the
//! error body Stripe sends for it.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Query, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{error_body, last_four, StripeSim, BODY_LIMIT, REQUEST_LOG_LIMIT};
use crate::faults::dev_error;

/// One request received under `/v1`.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `authorization` (redacted to its last four characters), `idempotency-key`,
    /// `stripe-version`, `stripe-account`, `content-type` and `user-agent`, when sent.
    pub headers: Map<String, Value>,
    /// The raw body, as received.
    pub body: String,
    pub at_unix_ms: i64,
}

const LOGGED_HEADERS: &[&str] = &[
    "idempotency-key",
    "stripe-version",
    "stripe-account",
    "content-type",
    "user-agent",
];

fn logged_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(auth) = headers.get("authorization") {
        let auth = String::from_utf8_lossy(auth.as_bytes());
        let (scheme, credentials) = auth.split_once(' ').unwrap_or(("", &auth));
        let redacted = format!("{scheme} ****{}", last_four(credentials));
        out.insert("authorization".into(), json!(redacted.trim_start()));
    }
    for name in LOGGED_HEADERS {
        if let Some(value) = headers.get(*name) {
            out.insert(
                (*name).into(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            );
        }
    }
    out
}

/// What Stripe answers for a status when the script gives no body.
fn default_body(status: StatusCode) -> Value {
    let injected = " (injected by the simulator)";
    match status.as_u16() {
        401 => error_body(
            "invalid_request_error",
            None,
            None,
            &format!("Invalid API Key provided{injected}"),
        ),
        402 => error_body(
            "card_error",
            Some("card_declined"),
            None,
            &format!("Your card was declined{injected}."),
        ),
        404 => error_body(
            "invalid_request_error",
            Some("resource_missing"),
            None,
            &format!("No such object{injected}."),
        ),
        409 => error_body(
            "invalid_request_error",
            Some("lock_timeout"),
            None,
            &format!("This object is locked by another request; try again{injected}."),
        ),
        429 => error_body(
            "invalid_request_error",
            Some("rate_limit"),
            None,
            &format!("Too many requests hit the API too quickly{injected}."),
        ),
        500..=599 => error_body(
            "api_error",
            None,
            None,
            &format!("An error occurred with our connection to Stripe{injected}."),
        ),
        _ => error_body(
            "invalid_request_error",
            None,
            None,
            &format!("Request failed{injected}."),
        ),
    }
}

/// Outermost layer: records `/v1` requests and plays queued faults before normal handling.
pub(super) async fn record_and_inject(
    State(sim): State<Arc<StripeSim>>,
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
    {
        let mut state = sim.state();
        if state.requests.len() >= REQUEST_LOG_LIMIT {
            state.requests.pop_front();
        }
        state.requests.push_back(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            headers: logged_headers(&parts.headers),
            body: String::from_utf8_lossy(&bytes).into_owned(),
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

pub(super) async fn add_faults(State(sim): State<Arc<StripeSim>>, body: Bytes) -> Response {
    sim.faults.add(&body)
}

pub(super) async fn clear_faults(State(sim): State<Arc<StripeSim>>) -> Response {
    sim.faults.clear()
}

/// `GET /dev/requests?path_prefix=..`: oldest first.
pub(super) async fn list_requests(
    State(sim): State<Arc<StripeSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let prefix = query.get("path_prefix").map_or("", String::as_str);
    Json(sim.requests(prefix)).into_response()
}

pub(super) async fn clear_requests(State(sim): State<Arc<StripeSim>>) -> Response {
    let cleared = std::mem::take(&mut sim.state().requests).len();
    Json(json!({ "cleared": cleared })).into_response()
}
