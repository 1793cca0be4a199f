//! /auth/profile: the signed-in user's own account. A new name is written to Stack Auth (the
//! display name) first and only then here, so a refusal there leaves both sides unchanged.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::AppJson;
use crate::{
    auth::AuthUser,
    error::{AppResult, ErrorBody},
    users::{self, AuthProvider, Role, User, UserStatus},
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_profile, update_profile))
}

/// The design's User model.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub credits: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_active: bool,
    pub auth_provider: AuthProvider,
    pub role: Role,
}

impl Profile {
    pub(super) fn new(user: User, is_admin: bool) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            credits: user.credits,
            created_at: user.created_at,
            updated_at: user.updated_at,
            is_active: user.status == UserStatus::Active,
            auth_provider: user.auth_provider,
            role: if is_admin { Role::Admin } else { user.role },
        }
    }
}

#[utoipa::path(get, path = "/auth/profile", tag = "auth",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_profile(auth: AuthUser) -> Json<Profile> {
    Json(Profile::new(auth.user, auth.is_admin))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    /// Display name, 1 to 100 characters.
    pub name: String,
}

pub const MAX_NAME_CHARS: usize = 100;

fn clean_name(raw: &str) -> AppResult<String> {
    crate::text::line("name", raw, MAX_NAME_CHARS)
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
    let name = clean_name(&update.name)?;
    // No database connection is held while Stack Auth answers.
    let subject = users::auth_subject(&state.db().get().await?, auth.tenant).await?;
    state
        .stack_auth()
        .await?
        .set_display_name(&subject, &name)
        .await?;
    let user = users::update_name(&state.db().get().await?, auth.tenant, &name).await?;
    Ok(Json(Profile::new(user, auth.is_admin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Ada Lovelace ").expect("ok"), "Ada Lovelace");
        assert_eq!(
            clean_name("Zoë 山田 <b>").expect("unicode and markup kept as text"),
            "Zoë 山田 <b>"
        );
        assert!(clean_name("   ").is_err());
        assert!(clean_name("a\u{0}b").is_err());
        assert!(clean_name(&"x".repeat(101)).is_err());
        assert!(clean_name(&"é".repeat(100)).is_ok());
    }
}
