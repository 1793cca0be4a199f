//! Stack Auth's error responses. A "known error" is an HTTP status, a JSON body
//! `{"code", "details"?, "error"}` and the header `X-Stack-Known-Error: <code>`
//! (packages/stack-shared/src/known-errors.tsx, `KnownError.getBody/getHeaders`). Other errors
//! (`StatusError`) are a status with a plain-text body.

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

/// The header that names a known error's code.
pub const KNOWN_ERROR_HEADER: &str = "x-stack-known-error";

#[derive(Clone, Debug, PartialEq)]
pub struct KnownError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl KnownError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = json!({ "code": self.code, "error": self.message });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body
    }

    // --- request parsing and validation ---

    pub fn body_parsing(message: &str) -> Self {
        Self::new(400, "BODY_PARSING_ERROR", message)
    }

    /// `SCHEMA_ERROR` with Stack Auth's message for failed request validation.
    pub fn schema(route: &str, problems: &[String]) -> Self {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        Self::schema_raw(&format!(
            "Request validation failed on {route}:\n{}",
            lines.join("\n")
        ))
    }

    pub fn schema_raw(message: &str) -> Self {
        Self::new(400, "SCHEMA_ERROR", message).with_details(json!({ "message": message }))
    }

    // --- project authentication (headers) ---

    pub fn project_key_without_access_type() -> Self {
        Self::new(400, "PROJECT_KEY_WITHOUT_ACCESS_TYPE", "Either an API key or an admin access token was provided, but the x-stack-access-type header is missing. Set it to 'client', 'server', or 'admin' as appropriate.")
    }

    pub fn invalid_access_type(access_type: &str) -> Self {
        Self::new(
            400,
            "INVALID_ACCESS_TYPE",
            format!("The x-stack-access-type header must be 'client', 'server', or 'admin', but was '{access_type}'."),
        )
    }

    pub fn access_type_without_project_id(access_type: &str) -> Self {
        Self::new(
            400,
            "ACCESS_TYPE_WITHOUT_PROJECT_ID",
            format!("The x-stack-access-type header was '{access_type}', but the x-stack-project-id header was not provided.\n\nFor more information, see the docs on REST API authentication: https://docs.stack-auth.com/rest-api/overview#authentication"),
        )
        .with_details(json!({ "request_type": access_type }))
    }

    pub fn access_type_required() -> Self {
        Self::new(400, "ACCESS_TYPE_REQUIRED", "You must specify an access level for this Stack project. Make sure project API keys are provided (eg. x-stack-publishable-client-key) and you set the x-stack-access-type header to 'client', 'server', or 'admin'.\n\nFor more information, see the docs on REST API authentication: https://docs.stack-auth.com/rest-api/overview#authentication")
    }

    pub fn insufficient_access_type(actual: &str, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        Self::new(
            401,
            "INSUFFICIENT_ACCESS_TYPE",
            format!(
                "The x-stack-access-type header must be {}, but was '{actual}'.",
                list.join(" or ")
            ),
        )
        .with_details(json!({ "actual_access_type": actual, "allowed_access_types": allowed }))
    }

    pub fn invalid_publishable_client_key(project_id: &str) -> Self {
        Self::new(
            401,
            "INVALID_PUBLISHABLE_CLIENT_KEY",
            format!("The publishable key is not valid for the project {project_id:?}. Does the project and/or the key exist?"),
        )
        .with_details(json!({ "project_id": project_id }))
    }

    pub fn invalid_secret_server_key(project_id: &str) -> Self {
        Self::new(
            401,
            "INVALID_SECRET_SERVER_KEY",
            format!("The secret server key is not valid for the project {project_id:?}. Does the project and/or the key exist?"),
        )
        .with_details(json!({ "project_id": project_id }))
    }

    pub fn invalid_super_secret_admin_key(project_id: &str) -> Self {
        Self::new(
            401,
            "INVALID_SUPER_SECRET_ADMIN_KEY",
            format!("The super secret admin key is not valid for the project {project_id:?}. Does the project and/or the key exist?"),
        )
        .with_details(json!({ "project_id": project_id }))
    }

    pub fn server_authentication_required() -> Self {
        Self::new(
            401,
            "SERVER_AUTHENTICATION_REQUIRED",
            "The secret server key must be provided.",
        )
    }

    pub fn admin_authentication_required() -> Self {
        Self::new(
            401,
            "ADMIN_AUTHENTICATION_REQUIRED",
            "The super secret admin key must be provided.",
        )
    }

    pub fn project_not_found(project_id: &str) -> Self {
        Self::new(
            404,
            "PROJECT_NOT_FOUND",
            format!("Project {project_id} not found or is not accessible with the current user."),
        )
        .with_details(json!({ "project_id": project_id }))
    }

    pub fn branch_does_not_exist(branch_id: &str) -> Self {
        Self::new(
            400,
            "BRANCH_DOES_NOT_EXIST",
            format!("The branch with ID {branch_id} does not exist."),
        )
        .with_details(json!({ "branch_id": branch_id }))
    }

    // --- sessions and access tokens ---

    pub fn unparsable_access_token() -> Self {
        Self::new(
            401,
            "UNPARSABLE_ACCESS_TOKEN",
            "Access token is not parsable.",
        )
    }

    pub fn access_token_expired(expired_at_millis: Option<i64>) -> Self {
        let when = expired_at_millis
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| {
                format!(
                    " (The access token expired at {}.)",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                )
            })
            .unwrap_or_default();
        Self::new(
            401,
            "ACCESS_TOKEN_EXPIRED",
            format!("Access token has expired. Please refresh it and try again.{when}"),
        )
        .with_details(json!({ "expired_at_millis": expired_at_millis }))
    }

    pub fn invalid_project_for_access_token(expected: &str, actual: &str) -> Self {
        Self::new(
            401,
            "INVALID_PROJECT_FOR_ACCESS_TOKEN",
            format!("Access token not valid for this project. Expected project ID {expected:?}, but the token is for project ID {actual:?}."),
        )
        .with_details(json!({ "expected_project_id": expected, "actual_project_id": actual }))
    }

    pub fn refresh_token_not_found_or_expired() -> Self {
        Self::new(
            401,
            "REFRESH_TOKEN_NOT_FOUND_OR_EXPIRED",
            "Refresh token not found for this project, or the session has expired/been revoked.",
        )
    }

    // --- users ---

    pub fn user_email_already_exists(email: &str) -> Self {
        Self::new(
            409,
            "USER_EMAIL_ALREADY_EXISTS",
            format!("A user with email {email:?} already exists."),
        )
        .with_details(json!({ "email": email, "would_work_if_email_was_verified": false }))
    }

    pub fn cannot_get_own_user_without_user() -> Self {
        Self::new(
            400,
            "CANNOT_GET_OWN_USER_WITHOUT_USER",
            "You have specified 'me' as a userId, but did not provide authentication for a user.",
        )
    }

    pub fn user_not_found() -> Self {
        Self::new(404, "USER_NOT_FOUND", "User not found.")
    }

    // --- passwords ---

    pub fn email_password_mismatch() -> Self {
        Self::new(400, "EMAIL_PASSWORD_MISMATCH", "Wrong e-mail or password.")
    }

    pub fn password_too_short(min_length: usize) -> Self {
        Self::new(
            400,
            "PASSWORD_TOO_SHORT",
            format!("Password too short. Minimum length is {min_length}."),
        )
        .with_details(json!({ "min_length": min_length }))
    }

    pub fn password_too_long(max_length: usize) -> Self {
        Self::new(
            400,
            "PASSWORD_TOO_LONG",
            format!("Password too long. Maximum length is {max_length}."),
        )
        .with_details(json!({ "maxLength": max_length }))
    }

    pub fn verification_code_not_found() -> Self {
        Self::new(
            404,
            "VERIFICATION_CODE_NOT_FOUND",
            "The verification code does not exist for this project.",
        )
    }

    pub fn verification_code_expired() -> Self {
        Self::new(
            400,
            "VERIFICATION_CODE_EXPIRED",
            "The verification code has expired.",
        )
    }

    pub fn verification_code_already_used() -> Self {
        Self::new(
            409,
            "VERIFICATION_CODE_ALREADY_USED",
            "The verification link has already been used.",
        )
    }

    // --- OAuth ---

    pub fn invalid_oauth_client_id_or_secret(client_id: &str) -> Self {
        Self::new(400, "INVALID_OAUTH_CLIENT_ID_OR_SECRET", "The OAuth client ID or secret is invalid. The client ID must be equal to the project ID (potentially with a hash and a branch ID), and the client secret must be a publishable client key.")
            .with_details(json!({ "client_id": client_id }))
    }

    pub fn oauth_provider_not_found_or_not_enabled() -> Self {
        Self::new(
            400,
            "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED",
            "The OAuth provider is not found or not enabled.",
        )
    }
}

impl IntoResponse for KnownError {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                (
                    header::HeaderName::from_static(KNOWN_ERROR_HEADER),
                    self.code,
                ),
            ],
            self.body().to_string(),
        )
            .into_response()
    }
}

/// What a handler can fail with: a known error, or Stack Auth's plain `StatusError`.
#[derive(Debug)]
pub enum ApiError {
    Known(KnownError),
    Status(StatusCode, String),
}

impl From<KnownError> for ApiError {
    fn from(error: KnownError) -> Self {
        Self::Known(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Known(error) => error.into_response(),
            Self::Status(status, message) => (status, message).into_response(),
        }
    }
}

pub type ApiResult = Result<Response, ApiError>;
