//! `/v1`: the API key check, idempotent POSTs, and the Checkout Session endpoints.

use std::sync::Arc;

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{OriginalUri, Path, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use serde_json::Value;

use super::{
    error_body, invalid_request, no_such_session, now, objects, params, random_id, redact_key,
    stripe_error, ApiResult, StoredSession, StripeSim, BODY_LIMIT,
};
use crate::form;

/// Stripe refuses longer `Idempotency-Key`s.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// The key a request presents: `Authorization: Bearer <key>`, or Basic auth with the key as
/// the user name (what `curl -u sk_...:` sends).
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_owned()).filter(|k| !k.is_empty());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split(':').next().unwrap_or_default();
        return Some(user.to_owned()).filter(|k| !k.is_empty());
    }
    None
}

fn unauthorized(message: String) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"Stripe\"")],
        Json(error_body("invalid_request_error", None, None, &message)),
    )
        .into_response()
}

/// Rejects requests without the configured secret key; tags every answer with a `Request-Id`.
pub(super) async fn require_key(
    State(sim): State<Arc<StripeSim>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match presented_key(request.headers()) {
        Some(key) if key == sim.config.secret_key => next.run(request).await,
        Some(key) => unauthorized(format!("Invalid API Key provided: {}", redact_key(&key))),
        None => unauthorized(
            "You did not provide an API key. Send it in the Authorization header as a Bearer \
             token (Authorization: Bearer sk_...)."
                .into(),
        ),
    };
    if let Ok(id) = HeaderValue::try_from(random_id("req_", 14)) {
        response.headers_mut().insert("request-id", id);
    }
    response
}

/// What an `Idempotency-Key` was first used for, and (once finished) what it answered.
pub(super) struct Idempotent {
    fingerprint: Fingerprint,
    stored: Option<(StatusCode, Bytes)>,
}

/// A request's identity for idempotency: endpoint plus parameters (decoded, so that the order
/// of form fields does not matter).
#[derive(PartialEq)]
struct Fingerprint {
    method: Method,
    path: String,
    params: Value,
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> Fingerprint {
    let text = String::from_utf8_lossy(body);
    let params = form::parse(&text).map_or_else(|_| Value::String(text.to_string()), Value::Object);
    Fingerprint {
        method: method.clone(),
        path: path.to_owned(),
        params,
    }
}

fn with_key_header(mut response: Response, key: &HeaderValue, replayed: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert("idempotency-key", key.clone());
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// POSTs with an `Idempotency-Key`: the first answer is stored (successes and server errors,
/// not validation errors) and replayed for the same parameters; other parameters get an
/// `idempotency_error`, as does a request while the first is still running.
pub(super) async fn idempotency(
    State(sim): State<Arc<StripeSim>>,
    request: Request,
    next: Next,
) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .filter(|v| !v.is_empty())
        .cloned();
    let Some(key) = key.filter(|_| request.method() == Method::POST) else {
        return next.run(request).await;
    };
    let key_text = String::from_utf8_lossy(key.as_bytes()).into_owned();
    if key_text.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return invalid_request(
            None,
            Some("Idempotency-Key"),
            "Idempotency-Key can be at most 255 characters long.",
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return invalid_request(None, None, "The request body is too large.").into_response();
    };
    let print = fingerprint(&parts.method, parts.uri.path(), &bytes);
    {
        let mut state = sim.state();
        match state.idempotency.get(&key_text) {
            Some(first) if first.fingerprint != print => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    format!(
                        "The Idempotency-Key '{key_text}' was already used with different \
                         parameters or another endpoint; use a new key for a different request."
                    ),
                )
                .into_response()
            }
            Some(Idempotent {
                stored: Some((status, body)),
                ..
            }) => {
                let replay = (
                    *status,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.clone(),
                )
                    .into_response();
                return with_key_header(replay, &key, true);
            }
            Some(Idempotent { stored: None, .. }) => {
                return stripe_error(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    Some("idempotency_key_in_use"),
                    None,
                    format!(
                        "Another request with the Idempotency-Key '{key_text}' is still running."
                    ),
                )
                .into_response()
            }
            None => {
                state.idempotency.insert(
                    key_text.clone(),
                    Idempotent {
                        fingerprint: print,
                        stored: None,
                    },
                );
            }
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    {
        let mut state = sim.state();
        if parts.status.is_success() || parts.status.is_server_error() {
            if let Some(entry) = state.idempotency.get_mut(&key_text) {
                entry.stored = Some((parts.status, body.clone()));
            }
        } else {
            state.idempotency.remove(&key_text);
        }
    }
    with_key_header(Response::from_parts(parts, Body::from(body)), &key, false)
}

/// `POST /v1/checkout/sessions`.
pub(super) async fn create_session(State(sim): State<Arc<StripeSim>>, body: Bytes) -> ApiResult {
    let text = String::from_utf8_lossy(&body);
    let form = form::parse(&text).map_err(|e| {
        invalid_request(
            None,
            Some(&e.key),
            format!("Invalid request: {e} (use either a value or nested keys)."),
        )
    })?;
    let created = now();
    let new = params::new_session(&form, created)?;
    let id = random_id("cs_test_a1", 56);
    let object = objects::session(&new, &id, &sim.checkout_url(&id), created);
    let stored = StoredSession {
        object: object.clone(),
        items: new.items,
        payment_intent_metadata: new.payment_intent_metadata,
        charge: None,
    };
    sim.state().sessions.insert(id, stored);
    Ok(Json(object).into_response())
}

/// `GET /v1/checkout/sessions/{id}`.
pub(super) async fn retrieve_session(
    State(sim): State<Arc<StripeSim>>,
    Path(id): Path<String>,
) -> ApiResult {
    let object = sim.session(&id).ok_or_else(|| no_such_session(&id))?;
    Ok(Json(object).into_response())
}

/// `POST /v1/checkout/sessions/{id}/expire`: only open sessions; the event is delivered in the
/// background, as Stripe does.
pub(super) async fn expire_session(
    State(sim): State<Arc<StripeSim>>,
    Path(id): Path<String>,
) -> ApiResult {
    let (object, events) = sim.expire(&id).map_err(|e| match e {
        super::checkout::NotPayable::Unknown => no_such_session(&id),
        super::checkout::NotPayable::Status(status) => invalid_request(
            None,
            None,
            format!(
                "Only Checkout Sessions with status 'open' can be expired; this one is '{status}'."
            ),
        ),
    })?;
    tokio::spawn(async move { sim.send(events).await });
    Ok(Json(object).into_response())
}

/// Any other `/v1` URL.
pub(super) async fn unknown_url(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
        format!(
            "Unrecognized request URL ({method}: {}). The simulator serves only Checkout Sessions.",
            uri.path()
        ),
    )
    .into_response()
}
