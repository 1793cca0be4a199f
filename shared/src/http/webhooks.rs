//! The webhook-ingest group: ElevenLabs' post-call webhooks, Stripe's payment events, and the
//! contact lookup ElevenLabs calls while it sets up an inbound call.

use axum::{body::Bytes, extract::DefaultBodyLimit, extract::State, http::HeaderMap, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::ClientAddress;
use crate::{
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    webhooks::ingest::{self, Sender},
    AppState,
};

/// Audio arrives base64-encoded in the body; a long call is tens of megabytes.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 64 << 20;
/// Stripe's events are small JSON objects; nothing bigger is read before it is refused.
pub const MAX_STRIPE_BODY_BYTES: usize = 1 << 20;

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; call_completed))
        .routes(routes!(M; call_analytics))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY_BYTES))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(M; stripe_event))
                .layer(DefaultBodyLimit::max(MAX_STRIPE_BODY_BYTES)),
        )
        .merge(super::contact_lookup::router::<M>())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// The event was verified and queued; an exact redelivery is applied once by the processor.
    pub received: bool,
}

async fn receive(
    state: &AppState,
    sender: Sender,
    route: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> AppResult<Json<Received>> {
    let signature = headers.get(sender.header()).and_then(|v| v.to_str().ok());
    ingest::receive(
        state,
        sender,
        route,
        signature,
        ClientAddress::from_headers(headers)
            .0
            .as_deref()
            .unwrap_or("unknown"),
        body,
    )
    .await?;
    Ok(Json(Received { received: true }))
}

/// Every ElevenLabs workspace webhook (post_call_transcription, post_call_audio,
/// call_initiation_failure, and types not known yet). Signed with `ElevenLabs-Signature`.
#[utoipa::path(post, path = "/webhooks/elevenlabs/call-completed", tag = "webhooks",
    request_body(content = String, description = "ElevenLabs webhook envelope {type, event_timestamp, data}", content_type = "application/json"),
    params(("ElevenLabs-Signature" = String, Header, description = "t=<unix>,v0=<hex HMAC-SHA256>")),
    responses((status = 200, body = Received), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn call_completed(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Received>> {
    receive(
        &state,
        Sender::Elevenlabs,
        "call-completed",
        &headers,
        &body,
    )
    .await
}

/// Analytics for a conversation: `{data: {conversation_id, agent_id?, analysis}}` (or the
/// same fields at the top level). Same signature as the other webhooks.
#[utoipa::path(post, path = "/webhooks/elevenlabs/call-analytics", tag = "webhooks",
    request_body(content = String, description = "{data: {conversation_id, agent_id, analysis}}", content_type = "application/json"),
    params(("ElevenLabs-Signature" = String, Header, description = "t=<unix>,v0=<hex HMAC-SHA256>")),
    responses((status = 200, body = Received), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn call_analytics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Received>> {
    receive(
        &state,
        Sender::Elevenlabs,
        "call-analytics",
        &headers,
        &body,
    )
    .await
}

/// Stripe's events (checkout.session.*, charge.refunded; others are acknowledged and ignored),
/// verified on the raw body and queued for the processor.
#[utoipa::path(post, path = "/billing/webhook/stripe", tag = "webhooks",
    request_body(content = String, description = "A Stripe event {id, type, data: {object}}", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>[,v1=...]")),
    responses((status = 200, body = Received), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn stripe_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Received>> {
    receive(&state, Sender::Stripe, "stripe", &headers, &body).await
}
