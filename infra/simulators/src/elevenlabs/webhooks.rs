//! Signed post-call webhooks: the signature, delivery to our API, `/dev/simulate-call` and
//! `/dev/webhook`.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::{
    body::Bytes,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{
    conversation, dev_error, events, fake_mp3, now, CallParams, Direction, ElevenLabsSim, Outcome,
};

/// The header that carries [`sign`]'s value.
pub const SIGNATURE_HEADER: &str = "ElevenLabs-Signature";
/// Where our API receives post-call webhooks (under `WEBHOOK_TARGET_URL`).
pub const WEBHOOK_PATH: &str = "/webhooks/elevenlabs/call-completed";
/// Call length when `/dev/simulate-call` is not given one.
const DEFAULT_DURATION_SECS: i64 = 133;

/// The `ElevenLabs-Signature` value for `body` sent at `timestamp`:
/// `t=<timestamp>,v0=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={timestamp},v0={}", hex::encode(context.sign().as_ref()))
}

/// The outcome of delivering one event to our API.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    #[serde(rename = "type")]
    pub event_type: String,
    /// The HTTP status our API answered, or None when it could not be reached.
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Our API's response body.
    #[serde(skip)]
    pub body: Option<String>,
}

/// An error with its causes, e.g. "error sending request: connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl ElevenLabsSim {
    pub fn webhook_url(&self) -> String {
        format!(
            "{}{WEBHOOK_PATH}",
            self.config.webhook_target_url.trim_end_matches('/')
        )
    }

    /// Serializes `event`, signs exactly those bytes (with `secret` and `timestamp` when given,
    /// else the configured secret and now) and POSTs them to [`Self::webhook_url`].
    pub async fn deliver(
        &self,
        event: &Value,
        secret: Option<&str>,
        timestamp: Option<i64>,
    ) -> Delivery {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let signature = sign(
            secret.unwrap_or(&self.config.webhook_secret),
            timestamp.unwrap_or_else(now),
            &body,
        );
        let event_type = event["type"].as_str().unwrap_or_default().to_owned();
        let sent = self
            .http
            .post(self.webhook_url())
            .header(header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let delivery = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.ok();
                Delivery {
                    event_type,
                    status: Some(status),
                    error: None,
                    body,
                }
            }
            Err(error) => Delivery {
                event_type,
                status: None,
                error: Some(error_chain(&error)),
                body: None,
            },
        };
        tracing::info!(
            r#type = %delivery.event_type,
            status = ?delivery.status,
            error = ?delivery.error,
            "ElevenLabs simulator delivered a webhook"
        );
        delivery
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct SimulateCall {
    agent_id: String,
    #[serde(default)]
    duration_secs: Option<i64>,
    #[serde(default)]
    outcome: Outcome,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default = "yes")]
    deliver: bool,
    #[serde(default = "yes")]
    audio: bool,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    dynamic_variables: Option<Map<String, Value>>,
    #[serde(default)]
    scores: Option<Map<String, Value>>,
}

/// Takes over a stored call (e.g. one started by outbound-call): its numbers, SIDs, start time
/// and dynamic variables.
fn continue_call(params: &mut CallParams, existing: &Value) {
    let phone_call = &existing["metadata"]["phone_call"];
    if let Some(number) = phone_call["external_number"].as_str() {
        params.phone_number = number.to_owned();
    }
    if phone_call["direction"] == "inbound" {
        params.direction = Direction::Inbound;
    }
    if let Some(sid) = phone_call["call_sid"].as_str() {
        params.call_sid = sid.to_owned();
    }
    if let Some(sid) = phone_call["stream_sid"].as_str() {
        params.stream_sid = sid.to_owned();
    }
    if let Some(start) = existing["metadata"]["start_time_unix_secs"].as_i64() {
        params.start_time_unix_secs = start;
        params.event_timestamp = now().max(start + params.duration_secs);
    }
    if let Some(user_id) = existing["user_id"].as_str() {
        params.user_id = Some(user_id.to_owned());
    }
    if let Some(Value::Object(mut data)) =
        existing.get("conversation_initiation_client_data").cloned()
    {
        if let Some(Value::Object(variables)) = data.remove("dynamic_variables") {
            params.dynamic_variables = variables
                .into_iter()
                .filter(|(k, _)| !k.starts_with("system__"))
                .collect();
        }
        params.client_data_extra = data;
    }
}

/// Builds a finished call, stores it, and (unless `deliver` is false) delivers its webhooks.
pub(super) async fn simulate_call(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> Response {
    let request: SimulateCall = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return dev_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let mut params = CallParams::new(
        request.agent_id,
        request.outcome,
        request.duration_secs.unwrap_or(DEFAULT_DURATION_SECS),
    );
    if let Some(name) = sim.agent_name(&params.agent_id) {
        params.agent_name = name;
    }
    if let Some(id) = request.conversation_id.filter(|id| !id.is_empty()) {
        if let Some(existing) = sim.conversation_data(&id) {
            continue_call(&mut params, &existing);
        }
        params.conversation_id = id;
    }
    if let Some(number) = request.phone_number.filter(|n| !n.is_empty()) {
        params.phone_number = number;
    }
    if let Some(direction) = request.direction {
        params.direction = direction;
    }
    params.audio = request.audio;
    params
        .dynamic_variables
        .extend(request.dynamic_variables.unwrap_or_default());
    params.scores = request.scores;

    let audio = params.has_audio().then(|| fake_mp3(params.duration_secs));
    sim.store_conversation(conversation(&params), audio);
    let mut deliveries = Vec::new();
    if request.deliver {
        for event in events(&params) {
            deliveries.push(sim.deliver(&event, None, None).await);
        }
    }
    Json(json!({
        "conversation_id": params.conversation_id,
        "deliveries": deliveries,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct RawWebhook {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Value,
    /// Sent as given (a number or, to test tolerance, a string); now when absent.
    #[serde(default)]
    event_timestamp: Option<Value>,
    /// Signs with this secret instead of the configured one.
    #[serde(default)]
    secret: Option<String>,
    /// The signature's `t=`; now when absent.
    #[serde(default)]
    timestamp: Option<i64>,
}

/// Signs and delivers an arbitrary event; answers our API's status and body.
pub(super) async fn send_webhook(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> Response {
    let request: RawWebhook = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return dev_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let event = json!({
        "type": request.event_type,
        "event_timestamp": request.event_timestamp.unwrap_or_else(|| json!(now())),
        "data": request.data,
    });
    let delivery = sim
        .deliver(&event, request.secret.as_deref(), request.timestamp)
        .await;
    let mut answer = json!({ "status": delivery.status, "body": delivery.body });
    if let Some(error) = delivery.error {
        answer["error"] = json!(error);
    }
    Json(answer).into_response()
}
