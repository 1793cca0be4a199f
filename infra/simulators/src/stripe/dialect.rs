//! The Stripe dialect of the request log and fault injection shared by the simulators (see
//! [`crate::intercept`] and, for the script format, [`crate::faults`]): bodies are recorded raw,
//! with the headers below, and a bare scripted status gets the error body Stripe sends for it.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::{error_body, last_four, BODY_LIMIT};
use crate::intercept::{Dialect, RecordedBody};

pub(super) const DIALECT: Dialect = Dialect {
    body_limit: BODY_LIMIT,
    body: RecordedBody::Raw,
    headers: Some(logged_headers),
    default_error_body: default_body,
};

/// Recorded besides `authorization` (redacted to its last four characters), when sent.
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
