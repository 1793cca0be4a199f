//! Stripe, as far as this backend sees it: Checkout Sessions for one-off credit purchases, created
//! and read under `/v1` behind `Authorization: Bearer <secret key>` with Stripe's form encoding
//! and error shapes, and the signed webhook events a purchase produces (wire formats of
//! ../shared/ref/stripe.md).
//!
//! - `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//!   `POST /v1/checkout/sessions/{id}/expire`; `Idempotency-Key` replays or rejects like Stripe.
//! - `GET /checkout/{id}`: the page a person pays on (buttons for each [`Outcome`]);
//!   `POST /checkout/{id}/pay` completes the session, delivers its events, and redirects to
//!   `success_url`.
//!
//! Local-only additions under `/dev` (no API key needed):
//! - `POST /dev/checkout/{id}/pay|refund|expire`: JSON twins of the page, plus refunds;
//! - `GET /dev/events`, `POST /dev/events/{id}/resend`: every event sent, and redelivery;
//! - `PUT /dev/webhook-secrets`: replaces the signing secrets (rotation tests);
//! - `POST|DELETE /dev/faults` (see [`crate::faults`]) and `GET|DELETE /dev/requests`.

mod api;
mod checkout;
mod dialect;
mod objects;
mod params;
mod webhooks;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::intercept::Interceptor;
pub use crate::intercept::RecordedRequest;
pub use objects::{charge, event, session, Charge, LineItem, NewSession, API_VERSION};
pub use webhooks::{signature_header, v1_signature, SentEvent, USER_AGENT};

/// Request bodies up to this size are accepted.
const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    /// The only API key accepted (`Authorization: Bearer <key>`).
    pub secret_key: String,
    /// Each signs every event (one `v1=` per secret, as during an endpoint secret roll).
    pub webhook_secrets: Vec<String>,
    /// Where events are POSTed, e.g. `http://127.0.0.1:3000/billing/webhook/stripe`.
    pub webhook_url: String,
    /// Base of the checkout page URLs (`{public_url}/checkout/{id}`).
    pub public_url: String,
}

/// How a simulated customer's payment ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Paid at once: `checkout.session.completed` with `payment_status` `paid`.
    #[default]
    Paid,
    /// A delayed method that clears: `completed` (unpaid), then `async_payment_succeeded`.
    DelayedSuccess,
    /// A delayed method that fails: `completed` (unpaid), then `async_payment_failed`.
    DelayedFailure,
}

impl Outcome {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_owned())).ok()
    }
}

/// The simulator: configuration, the HTTP client that delivers events, and all in-memory state.
pub struct StripeSim {
    pub config: Config,
    http: reqwest::Client,
    state: Mutex<SimState>,
    interceptor: Arc<Interceptor>,
}

#[derive(Default)]
struct SimState {
    sessions: HashMap<String, StoredSession>,
    idempotency: HashMap<String, api::Idempotent>,
    /// Oldest first.
    events: Vec<SentEvent>,
    webhook_secrets: Vec<String>,
}

/// A Checkout Session and what paying it created.
#[derive(Clone, Debug)]
struct StoredSession {
    /// The Session object exactly as the API returns it.
    object: Value,
    items: Vec<LineItem>,
    /// `payment_intent_data.metadata`: the PaymentIntent's and its Charge's metadata.
    payment_intent_metadata: Map<String, Value>,
    charge: Option<Charge>,
}

impl StripeSim {
    pub fn new(config: Config) -> Result<Self, reqwest::Error> {
        // The workspace's reqwest has rustls without a built-in provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .user_agent(USER_AGENT)
            .no_proxy()
            .build()?;
        let state = SimState {
            webhook_secrets: config.webhook_secrets.clone(),
            ..SimState::default()
        };
        Ok(Self {
            config,
            http,
            state: Mutex::new(state),
            interceptor: Interceptor::new(dialect::DIALECT),
        })
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panicking handler cannot leave the plain data inconsistent, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Session object, as `GET /v1/checkout/sessions/{id}` returns it.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.state().sessions.get(id).map(|s| s.object.clone())
    }

    /// How many sessions have been created.
    pub fn session_count(&self) -> usize {
        self.state().sessions.len()
    }

    /// Every event sent so far, oldest first.
    pub fn events(&self) -> Vec<SentEvent> {
        self.state().events.clone()
    }

    /// The `/v1` requests received so far whose path starts with `path_prefix`, oldest first.
    pub fn requests(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.interceptor.requests(path_prefix)
    }

    fn checkout_url(&self, id: &str) -> String {
        format!(
            "{}/checkout/{id}",
            self.config.public_url.trim_end_matches('/')
        )
    }
}

pub fn router(sim: Arc<StripeSim>) -> Router {
    let api = Router::new()
        .route("/checkout/sessions", post(api::create_session))
        .route("/checkout/sessions/{id}", get(api::retrieve_session))
        .route("/checkout/sessions/{id}/expire", post(api::expire_session))
        .fallback(api::unknown_url)
        .layer(middleware::from_fn_with_state(
            sim.clone(),
            api::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            sim.clone(),
            api::require_key,
        ));

    let routes = Router::new()
        .nest("/v1", api)
        .route("/checkout/{id}", get(checkout::page))
        .route("/checkout/{id}/pay", post(checkout::pay_form))
        .route("/dev/checkout/{id}/pay", post(checkout::pay_json))
        .route("/dev/checkout/{id}/refund", post(checkout::refund))
        .route("/dev/checkout/{id}/expire", post(checkout::expire))
        .route("/dev/events", get(webhooks::list_events))
        .route("/dev/events/{id}/resend", post(webhooks::resend))
        .route("/dev/webhook-secrets", put(webhooks::set_secrets))
        .route("/health", get(|| async { "ok" }));
    sim.interceptor
        .around(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

pub async fn serve(addr: SocketAddr, config: Config) -> std::io::Result<()> {
    let sim = StripeSim::new(config).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    crate::faults::serve(listener, router(Arc::new(sim))).await
}

// ---- helpers shared by the handlers ------------------------------------------------------------

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `<prefix><len random letters and digits>`, the shape of Stripe's object ids.
fn random_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(len));
    id
}

/// `sk_test_****abcd`: enough of a key to recognise it, never the key itself.
fn redact_key(key: &str) -> String {
    let prefix = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ]
    .into_iter()
    .find(|p| key.starts_with(p))
    .unwrap_or_default();
    format!("{prefix}****{}", last_four(&key[prefix.len()..]))
}

/// The last four characters, or nothing when that would be most of the text.
fn last_four(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 8 {
        return String::new();
    }
    chars[chars.len() - 4..].iter().collect()
}

/// An error response, boxed so that `Result`s stay small.
struct ApiError(Box<Response>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl<T: IntoResponse> From<(StatusCode, T)> for ApiError {
    fn from(response: (StatusCode, T)) -> Self {
        Self(Box::new(response.into_response()))
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

/// Stripe's error body: `{"error":{"type":..,"code"?:..,"param"?:..,"message":..}}`.
fn error_body(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error })
}

fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: impl Into<String>,
) -> ApiError {
    let message: String = message.into();
    (status, Json(error_body(kind, code, param, &message))).into()
}

/// A 400 `invalid_request_error`.
fn invalid_request(
    code: Option<&str>,
    param: Option<&str>,
    message: impl Into<String>,
) -> ApiError {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        param,
        message,
    )
}

fn no_such_session(id: &str) -> ApiError {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        Some("session"),
        format!("No such checkout.session: '{id}'"),
    )
}
