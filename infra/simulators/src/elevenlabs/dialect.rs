//! The ElevenLabs dialect of the request log and fault injection shared by the simulators (see
//! [`crate::intercept`] and, for the script format, [`crate::faults`]): bodies are recorded as
//! JSON, no headers are, and a bare scripted status gets ElevenLabs' usual error body.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::BODY_LIMIT;
use crate::intercept::{Dialect, RecordedBody};

pub(super) const DIALECT: Dialect = Dialect {
    body_limit: BODY_LIMIT,
    body: RecordedBody::Json,
    headers: None,
    default_error_body: default_body,
};

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
