//! Signed event delivery (`Stripe-Signature`), the log of events sent (`GET /dev/events`),
//! redelivery and signing-secret rotation.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{now, StripeSim};
use crate::faults::dev_error;

/// The `User-Agent` Stripe delivers events with.
pub const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Signs the `v0=` entry, which verifiers ignore (test-mode events carry one too).
const V0_KEY: &str = "sim_v0_ignored";

/// Lowercase hex HMAC-SHA256 of `"{timestamp}.{payload}"`, keyed with the whole secret string
/// (`whsec_...` included) as bytes.
pub fn v1_signature(secret: &str, timestamp: i64, payload: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(payload.as_bytes());
    hex::encode(context.sign().as_ref())
}

/// `t=<timestamp>,v1=<hex>` with one `v1` per secret, then a `v0` that matches nothing.
pub fn signature_header(secrets: &[String], timestamp: i64, payload: &str) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&v1_signature(secret, timestamp, payload));
    }
    value.push_str(",v0=");
    value.push_str(&v1_signature(V0_KEY, timestamp, payload));
    value
}

/// One event sent (what `GET /dev/events` lists).
#[derive(Clone, Debug, Serialize)]
pub struct SentEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The exact body POSTed (compact JSON).
    pub payload: String,
    /// What the endpoint answered last time, or None when it could not be reached (or the
    /// delivery has not finished yet).
    pub delivery_status: Option<u16>,
}

impl SentEvent {
    fn summary(&self) -> Value {
        json!({ "id": self.id, "type": self.event_type, "delivery_status": self.delivery_status })
    }
}

impl StripeSim {
    /// Logs `events` and delivers them in order, one after another. Answers
    /// `[{"id","type","delivery_status"}]`.
    pub(super) async fn send(&self, events: Vec<Value>) -> Vec<Value> {
        let sent: Vec<SentEvent> = events
            .iter()
            .map(|event| SentEvent {
                id: event["id"].as_str().unwrap_or_default().to_owned(),
                event_type: event["type"].as_str().unwrap_or_default().to_owned(),
                payload: event.to_string(),
                delivery_status: None,
            })
            .collect();
        self.state().events.extend(sent.iter().cloned());
        let mut summaries = Vec::with_capacity(sent.len());
        for mut event in sent {
            event.delivery_status = self.deliver(&event).await;
            summaries.push(event.summary());
        }
        summaries
    }

    /// POSTs the event's payload, freshly signed with every current secret, and records the
    /// status it got.
    async fn deliver(&self, event: &SentEvent) -> Option<u16> {
        let secrets = self.state().webhook_secrets.clone();
        let signature = signature_header(&secrets, now(), &event.payload);
        let sent = self
            .http
            .post(&self.config.webhook_url)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(header::ACCEPT, "*/*; q=0.5, application/xml")
            .header(SIGNATURE_HEADER, signature)
            .body(event.payload.clone())
            .send()
            .await;
        let status = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer so the connection can be reused.
                let _ = response.bytes().await;
                Some(status)
            }
            Err(error) => {
                tracing::warn!(%error, url = %self.config.webhook_url, "Stripe simulator could not deliver an event");
                None
            }
        };
        tracing::info!(id = %event.id, r#type = %event.event_type, ?status, "Stripe simulator delivered an event");
        if let Some(logged) = self.state().events.iter_mut().find(|e| e.id == event.id) {
            logged.delivery_status = status;
        }
        status
    }
}

/// `GET /dev/events`: every event sent, oldest first.
pub(super) async fn list_events(State(sim): State<Arc<StripeSim>>) -> Response {
    Json(sim.events()).into_response()
}

/// `POST /dev/events/{id}/resend`: the same body again, signed now → `{"id","type","delivery_status"}`.
pub(super) async fn resend(State(sim): State<Arc<StripeSim>>, Path(id): Path<String>) -> Response {
    let event = sim.state().events.iter().find(|e| e.id == id).cloned();
    let Some(mut event) = event else {
        return dev_error(StatusCode::NOT_FOUND, format!("no event {id}"));
    };
    event.delivery_status = sim.deliver(&event).await;
    Json(event.summary()).into_response()
}

#[derive(Deserialize)]
struct Secrets {
    secrets: Vec<String>,
}

/// `PUT /dev/webhook-secrets {"secrets":["whsec_a","whsec_b"]}`: signs from now on with these.
pub(super) async fn set_secrets(State(sim): State<Arc<StripeSim>>, body: Bytes) -> Response {
    let request: Secrets = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return dev_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    if request.secrets.is_empty() || request.secrets.iter().any(String::is_empty) {
        return dev_error(
            StatusCode::BAD_REQUEST,
            "secrets must be a non-empty list of non-empty strings",
        );
    }
    let count = request.secrets.len();
    sim.state().webhook_secrets = request.secrets;
    Json(json!({ "secrets": count })).into_response()
}
