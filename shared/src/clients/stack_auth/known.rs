//! Stack Auth's known errors (`x-stack-known-error` codes) that the frontend can act on, and
//! the error each becomes here.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::AppError;

/// A known error the client can act on, as our error.
pub(super) struct Mapped {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    /// For validation problems: the field, and Stack Auth's explanation passed on in details.
    field: Option<&'static str>,
}

impl Mapped {
    pub(super) fn error(
        self,
        stack_code: &str,
        stack_message: String,
        stack_details: Option<Value>,
    ) -> AppError {
        let err = AppError::new(self.status, self.code, self.message);
        let Some(field) = self.field else {
            return err;
        };
        let mut details = json!({
            "field": field,
            "reason": stack_message,
            "service": "stack_auth",
            "code": stack_code,
        });
        if let Some(stack_details) = stack_details {
            details["details"] = stack_details;
        }
        err.with_details(details)
    }
}

pub(super) fn known(code: &str) -> Option<Mapped> {
    let mapped = |status, code, message, field| {
        Some(Mapped {
            status,
            code,
            message,
            field,
        })
    };
    match code {
        "USER_EMAIL_ALREADY_EXISTS" | "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE" => {
            mapped(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this email already exists",
                None,
            )
        }
        "EMAIL_PASSWORD_MISMATCH" => mapped(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
            None,
        ),
        "PASSWORD_TOO_SHORT" | "PASSWORD_TOO_LONG" | "PASSWORD_REQUIREMENTS_NOT_MET" => mapped(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "password: does not meet the password rules",
            Some("password"),
        ),
        "SCHEMA_ERROR" => mapped(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "the authentication service refused the request's fields",
            Some("body"),
        ),
        "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED" => mapped(
            StatusCode::BAD_REQUEST,
            "provider_not_enabled",
            "this sign-in provider is not enabled",
            None,
        ),
        "VERIFICATION_CODE_NOT_FOUND"
        | "VERIFICATION_CODE_EXPIRED"
        | "VERIFICATION_CODE_ALREADY_USED"
        // A code tried too often (Stack Auth allows 20 attempts).
        | "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED" => mapped(
            StatusCode::BAD_REQUEST,
            "invalid_reset_code",
            "the reset code is unknown, expired or already used; request a new email",
            None,
        ),
        "SIGN_UP_NOT_ENABLED" => mapped(
            StatusCode::FORBIDDEN,
            "signup_disabled",
            "new accounts cannot be created at the moment",
            None,
        ),
        // The project's sign-up rules or its bot check refused this one.
        "SIGN_UP_REJECTED" | "BOT_CHALLENGE_REQUIRED" | "BOT_CHALLENGE_FAILED" => mapped(
            StatusCode::FORBIDDEN,
            "signup_rejected",
            "the authentication service refused this sign-up",
            None,
        ),
        "PASSWORD_AUTHENTICATION_NOT_ENABLED" => mapped(
            StatusCode::FORBIDDEN,
            "password_auth_disabled",
            "sign-in with a password is not enabled",
            None,
        ),
        "MULTI_FACTOR_AUTHENTICATION_REQUIRED" => mapped(
            StatusCode::UNAUTHORIZED,
            "mfa_required",
            "this account needs a second factor, which this API does not handle",
            None,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_user_caused_is_a_4xx_they_can_act_on() {
        for (stack_code, status, code) in [
            (
                "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED",
                StatusCode::BAD_REQUEST,
                "invalid_reset_code",
            ),
            ("SIGN_UP_REJECTED", StatusCode::FORBIDDEN, "signup_rejected"),
            (
                "BOT_CHALLENGE_REQUIRED",
                StatusCode::FORBIDDEN,
                "signup_rejected",
            ),
            (
                "BOT_CHALLENGE_FAILED",
                StatusCode::FORBIDDEN,
                "signup_rejected",
            ),
        ] {
            let err = known(stack_code)
                .expect(stack_code)
                .error(stack_code, String::new(), None);
            assert_eq!((err.status, err.code), (status, code), "{stack_code}");
        }
        assert!(known("REDIRECT_URL_NOT_WHITELISTED").is_none());
    }
}
