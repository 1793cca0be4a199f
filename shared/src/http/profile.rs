//! /auth/profile: the signed-in user's own account.

use axum::{extract::State, Json};
use utoipa_axum::router::OpenApiRouter;

use super::AppJson;
use crate::{
    account::{self, Profile, ProfileUpdate},
    auth::AuthUser,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; get_profile, update_profile))
}

#[utoipa::path(get, path = "/auth/profile", tag = "auth",
    description = "The signed-in account. `auth_provider` is read from Stack Auth on the first read after the account was created and then at most hourly.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_profile(State(state): State<AppState>, auth: AuthUser) -> Json<Profile> {
    Json(account::profile(&state, auth).await)
}

#[utoipa::path(put, path = "/auth/profile", tag = "auth", request_body = ProfileUpdate,
    description = "Sets the name here and as the display name at Stack Auth (there first: if Stack Auth refuses, nothing changes).",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
async fn update_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(update): AppJson<ProfileUpdate>,
) -> AppResult<Json<Profile>> {
    Ok(Json(account::rename(&state, &auth, &update).await?))
}
