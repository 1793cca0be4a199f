//! Contact lookup for ElevenLabs' conversation-initiation webhook: who is calling, from the
//! owning tenant's contacts only. Authenticated by a shared secret header; it must be fast,
//! since the caller hears ringing while ElevenLabs waits.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::{AppJson, AppQuery};
use crate::{
    contacts::{self, lookup::CallerVariables},
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub const SECRET_HEADER: &str = "x-contact-lookup-secret";

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; lookup_for_call))
        .routes(routes!(M; lookup_by_phone))
}

/// ElevenLabs' conversation-initiation request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InitiationRequest {
    pub caller_id: Option<String>,
    pub agent_id: Option<String>,
    pub called_number: Option<String>,
    pub call_sid: Option<String>,
}

/// The `conversation_initiation_client_data` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientData {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub dynamic_variables: CallerVariables,
}

async fn authorize(state: &AppState, headers: &HeaderMap) -> AppResult<()> {
    let secrets = state.secrets().get().await?;
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    // Empty secrets are not accepted ones, so an unset secret lets nothing through.
    let accepted = secrets
        .contact_lookup_secrets(chrono::Utc::now().timestamp())
        .into_iter()
        .any(|secret| verify_slices_are_equal(secret.as_bytes(), given).is_ok());
    if !accepted {
        return Err(AppError::unauthorized(
            "invalid_lookup_secret",
            format!("missing or wrong {SECRET_HEADER} header"),
        ));
    }
    Ok(())
}

async fn lookup(state: &AppState, agent_id: &str, caller: &str) -> AppResult<ClientData> {
    Ok(ClientData {
        kind: "conversation_initiation_client_data",
        dynamic_variables: contacts::lookup::caller_variables(state, agent_id, caller).await?,
    })
}

#[utoipa::path(post, path = "/api/contact-lookup", tag = "webhooks", request_body = InitiationRequest,
    params(("x-contact-lookup-secret" = String, Header, description = "the shared secret")),
    responses((status = 200, body = ClientData), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn lookup_for_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<InitiationRequest>,
) -> AppResult<Json<ClientData>> {
    authorize(&state, &headers).await?;
    tracing::info!(call_sid = ?request.call_sid, called_number = ?request.called_number, "contact lookup");
    let agent_id = request
        .agent_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| AppError::validation("agent_id", "is required"))?;
    Ok(Json(
        lookup(
            &state,
            &agent_id,
            request.caller_id.as_deref().unwrap_or_default(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The ElevenLabs agent taking the call: it decides whose contacts are searched.
    pub agent_id: Option<String>,
}

#[utoipa::path(get, path = "/api/contact-lookup/{phone}", tag = "webhooks",
    params(("phone" = String, Path, description = "the caller's number"), LookupQuery,
        ("x-contact-lookup-secret" = String, Header, description = "the shared secret")),
    responses((status = 200, body = ClientData), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn lookup_by_phone(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(phone): Path<String>,
    AppQuery(query): AppQuery<LookupQuery>,
) -> AppResult<Json<ClientData>> {
    authorize(&state, &headers).await?;
    let agent_id = query
        .agent_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| AppError::validation("agent_id", "is required"))?;
    Ok(Json(lookup(&state, &agent_id, &phone).await?))
}
