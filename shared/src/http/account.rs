//! /auth/register, /auth/login, /auth/social and /auth/reset-password: the account flows of
//! [`crate::account`], at the edge.

use axum::{extract::State, http::StatusCode, Json};
use utoipa_axum::router::OpenApiRouter;

use super::{AppJson, ClientAddress};
use crate::{
    account::{
        self, AuthSession, LoginRequest, RegisterRequest, ResetConfirm, ResetDone, ResetRequest,
        ResetSent, SocialRequest, SocialStart,
    },
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; register))
        .routes(routes!(M; login))
        .routes(routes!(M; social))
        .routes(routes!(M; reset_password))
        .routes(routes!(M; confirm_reset))
}

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    description = "Creates the account at Stack Auth (which emails a verification link to FRONTEND_URL/verify-email), then here with the signup bonus, and signs it in.",
    responses((status = 201, body = AuthSession), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<RegisterRequest>,
) -> AppResult<(StatusCode, Json<AuthSession>)> {
    let session = account::register(&state, client.as_deref(), &request).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    description = "Signs in with email and password at Stack Auth; the account is created here on its first sign-in.",
    responses((status = 200, body = AuthSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<LoginRequest>,
) -> AppResult<Json<AuthSession>> {
    Ok(Json(
        account::login(&state, client.as_deref(), &request).await?,
    ))
}

#[utoipa::path(post, path = "/auth/social", tag = "auth", request_body = SocialRequest,
    description = "Starts a Google or LinkedIn sign-in through Stack Auth (its authorize endpoint in JSON mode, with PKCE).",
    responses((status = 200, body = SocialStart), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn social(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<SocialRequest>,
) -> AppResult<Json<SocialStart>> {
    Ok(Json(
        account::start_social(&state, client.as_deref(), &request).await?,
    ))
}

#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", request_body = ResetRequest,
    description = "Asks Stack Auth to email a reset link (to FRONTEND_URL/reset-password?code=...) if the email has an account; the answer is the same either way.",
    responses((status = 202, body = ResetSent), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<ResetRequest>,
) -> AppResult<(StatusCode, Json<ResetSent>)> {
    let sent = account::request_reset(&state, client.as_deref(), &request).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[utoipa::path(post, path = "/auth/reset-password/confirm", tag = "auth", request_body = ResetConfirm,
    description = "Sets a new password with the code from the reset email.",
    responses((status = 200, body = ResetDone), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn confirm_reset(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<ResetConfirm>,
) -> AppResult<Json<ResetDone>> {
    Ok(Json(
        account::confirm_reset(&state, client.as_deref(), &request).await?,
    ))
}
