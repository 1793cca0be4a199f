//! ElevenLabs Agents Platform (ConvAI), as far as this backend sees it: agents, the phone-number
//! list, conversations (with audio), Twilio outbound calls and batch calls, all under `/v1` behind
//! the `xi-api-key` header, with the wire formats of ../shared/ref/elevenlabs.md.
//!
//! Local-only additions under `/dev` (no API key needed):
//! - `POST /dev/simulate-call` builds a finished call, stores it and delivers signed post-call
//!   webhooks to `$WEBHOOK_TARGET_URL/webhooks/elevenlabs/call-completed` (what
//!   `scripts/simulate-call` calls);
//! - `POST /dev/webhook` signs and delivers an arbitrary event;
//! - `POST|DELETE /dev/faults` queues or clears scripted responses (429, 5xx, delays, bad bodies,
//!   dropped connections; see [`crate::faults`]);
//! - `GET|DELETE /dev/requests` lists or clears the `/v1` requests received so far.

mod agents;
mod conversations;
mod dialect;
mod payloads;
mod webhooks;

#[cfg(test)]
mod tests;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Map, Value};

use crate::{faults::dev_error, intercept::Interceptor};
pub use crate::{
    faults::{FaultResponse, FaultRule},
    intercept::RecordedRequest,
};
pub use payloads::{
    audio_event, conversation, envelope, events, fake_mp3, in_progress_conversation,
    initiation_failure_event, summary, transcription_event, CallParams, Direction, Outcome,
};
pub use webhooks::{sign, Delivery, SIGNATURE_HEADER, WEBHOOK_PATH};

/// The one Twilio number the simulated workspace owns.
pub const SIM_PHONE_NUMBER: &str = "+15550100000";
pub const SIM_PHONE_NUMBER_ID: &str = "phnum_sim_1";
/// A SIP trunk line listed before the Twilio one: Twilio's outbound-call endpoint refuses it.
pub const SIM_SIP_NUMBER_ID: &str = "phnum_sim_sip";

/// Bodies up to this size are accepted (big enough for audio events sent through `/dev/webhook`).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    /// The only `xi-api-key` value accepted.
    pub api_key: String,
    /// Signs the post-call webhooks (`ElevenLabs-Signature`).
    pub webhook_secret: String,
    /// Base URL of our API, e.g. `http://127.0.0.1:3000`; webhooks go to [`WEBHOOK_PATH`] under it.
    pub webhook_target_url: String,
}

/// The simulator: configuration, the HTTP client that delivers webhooks, and all in-memory state.
pub struct ElevenLabsSim {
    pub config: Config,
    http: reqwest::Client,
    state: Mutex<SimState>,
    interceptor: Arc<Interceptor>,
}

#[derive(Default)]
struct SimState {
    /// Insertion order (oldest first).
    agents: Vec<Agent>,
    conversations: Vec<StoredConversation>,
    batches: Vec<Value>,
    next_seq: u64,
}

#[derive(Clone, Debug)]
struct Agent {
    agent_id: String,
    name: String,
    conversation_config: Value,
    platform_settings: Value,
    tags: Value,
    created_at_unix_secs: i64,
}

#[derive(Clone, Debug)]
struct StoredConversation {
    /// Exactly the `data` of a `post_call_transcription` webhook (GET conversation's body).
    data: Value,
    audio: Option<Vec<u8>>,
    /// Breaks ties between conversations that started in the same second (newer is larger).
    seq: u64,
}

impl ElevenLabsSim {
    pub fn new(config: Config) -> Result<Self, reqwest::Error> {
        // The workspace's reqwest has rustls without a built-in provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .no_proxy()
            .build()?;
        Ok(Self {
            config,
            http,
            state: Mutex::new(SimState::default()),
            interceptor: Interceptor::new(dialect::DIALECT),
        })
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panicking handler cannot leave the plain data inconsistent, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `/v1` requests received so far whose path starts with `path_prefix`, oldest first.
    pub fn requests(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.interceptor.requests(path_prefix)
    }

    /// The stored conversation (the GET conversation body), if any.
    pub fn conversation_data(&self, conversation_id: &str) -> Option<Value> {
        self.state()
            .conversation(conversation_id)
            .map(|c| c.data.clone())
    }

    /// Stores (or replaces, by `conversation_id`) a conversation and its audio.
    pub fn store_conversation(&self, data: Value, audio: Option<Vec<u8>>) {
        let mut state = self.state();
        let id = data["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        state
            .conversations
            .retain(|c| c.data["conversation_id"] != id.as_str());
        let seq = state.seq();
        state
            .conversations
            .push(StoredConversation { data, audio, seq });
    }

    fn agent_name(&self, agent_id: &str) -> Option<String> {
        self.state().agent(agent_id).map(|a| a.name.clone())
    }
}

impl SimState {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn agent(&self, agent_id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.agent_id == agent_id)
    }

    fn conversation(&self, conversation_id: &str) -> Option<&StoredConversation> {
        self.conversations
            .iter()
            .find(|c| c.data["conversation_id"] == conversation_id)
    }
}

pub fn router(sim: Arc<ElevenLabsSim>) -> Router {
    let api = Router::new()
        .route("/convai/agents/create", post(agents::create))
        .route("/convai/agents", get(agents::list))
        .route(
            "/convai/agents/{agent_id}",
            get(agents::get)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route("/convai/phone-numbers", get(agents::phone_numbers))
        .route("/convai/conversations", get(conversations::list))
        .route(
            "/convai/conversations/{conversation_id}",
            get(conversations::get),
        )
        .route(
            "/convai/conversations/{conversation_id}/audio",
            get(conversations::audio),
        )
        .route(
            "/convai/twilio/outbound-call",
            post(conversations::outbound_call),
        )
        .route(
            "/convai/batch-calling/submit",
            post(conversations::submit_batch),
        )
        .route(
            "/convai/batch-calling/{batch_id}",
            get(conversations::get_batch),
        )
        .route(
            "/convai/batch-calling/{batch_id}/cancel",
            post(conversations::cancel_batch),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "detail": "Not Found" })),
            )
        })
        .layer(middleware::from_fn_with_state(sim.clone(), require_api_key));

    let routes = Router::new()
        .nest("/v1", api)
        .route("/dev/simulate-call", post(webhooks::simulate_call))
        .route("/dev/webhook", post(webhooks::send_webhook))
        .route("/health", get(|| async { "ok" }));
    sim.interceptor
        .around(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

pub async fn serve(addr: SocketAddr, config: Config) -> std::io::Result<()> {
    let sim = ElevenLabsSim::new(config).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    crate::faults::serve(listener, router(Arc::new(sim))).await
}

async fn require_api_key(
    State(sim): State<Arc<ElevenLabsSim>>,
    request: Request,
    next: Next,
) -> Response {
    let key = request
        .headers()
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok());
    if key != Some(sim.config.api_key.as_str()) {
        return detail_error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Invalid API key",
        )
        .into_response();
    }
    next.run(request).await
}

// ---- helpers shared by the handlers ------------------------------------------------------------

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `<prefix><n hex chars>` from a fresh random UUID (n ≤ 32).
fn random_id(prefix: &str, hex_chars: usize) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &hex[..hex_chars.min(hex.len())])
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

/// ElevenLabs' usual error: `{"detail":{"status":..,"message":..}}`.
fn detail_error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    let message: String = message.into();
    (
        status,
        Json(json!({ "detail": { "status": code, "message": message } })),
    )
        .into()
}

fn not_found(message: impl Into<String>) -> ApiError {
    detail_error(StatusCode::NOT_FOUND, "not_found", message)
}

/// FastAPI's 422: `{"detail":[{"loc":[..],"msg":..,"type":..}]}`.
fn validation_error(loc: &[&str], msg: &str, kind: &str) -> ApiError {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": [{ "loc": loc, "msg": msg, "type": kind }] })),
    )
        .into()
}

type Body = Map<String, Value>;

/// The request body as a JSON object, or FastAPI's 422.
fn parse_object(bytes: &Bytes) -> ApiResult<Body> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(validation_error(
            &["body"],
            "field required",
            "value_error.missing",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation_error(
            &["body"],
            "value is not a valid dict",
            "type_error.dict",
        )),
        Err(e) => Err(validation_error(
            &["body", &e.column().to_string()],
            &format!("JSON decode error: {e}"),
            "value_error.jsondecode",
        )),
    }
}

/// A required string field.
fn required_str(body: &Body, field: &str) -> ApiResult<String> {
    optional_str(body, field)?
        .ok_or_else(|| validation_error(&["body", field], "field required", "value_error.missing"))
}

/// An optional string field (`null` counts as absent).
fn optional_str(body: &Body, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(validation_error(
            &["body", field],
            "str type expected",
            "type_error.str",
        )),
    }
}

/// An optional object field (`null` counts as absent).
fn optional_object(body: &Body, field: &str) -> ApiResult<Option<Value>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
        Some(_) => Err(validation_error(
            &["body", field],
            "value is not a valid dict",
            "type_error.dict",
        )),
    }
}

/// An optional array field (`null` counts as absent).
fn optional_array(body: &Body, field: &str) -> ApiResult<Option<Vec<Value>>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(_) => Err(validation_error(
            &["body", field],
            "value is not a valid list",
            "type_error.list",
        )),
    }
}

/// Cursor pagination over an already ordered list: the cursor is the offset of the next page.
fn paginate<T>(
    items: Vec<T>,
    query: &std::collections::HashMap<String, String>,
) -> ApiResult<(Vec<T>, Option<String>, bool)> {
    let page_size = match query.get("page_size").filter(|s| !s.is_empty()) {
        None => 30,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => {
                return Err(validation_error(
                    &["query", "page_size"],
                    "ensure this value is between 1 and 100",
                    "value_error.number",
                ))
            }
        },
    };
    let offset = match query.get("cursor").filter(|s| !s.is_empty()) {
        None => 0,
        Some(raw) => raw.parse::<usize>().map_err(|_| {
            detail_error(StatusCode::BAD_REQUEST, "invalid_cursor", "Invalid cursor")
        })?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(page_size).collect();
    let end = offset + page.len();
    let has_more = end < total;
    Ok((page, has_more.then(|| end.to_string()), has_more))
}
