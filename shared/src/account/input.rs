//! Checking what a client sends to the account flows, before anything reaches Stack Auth.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::{PASSWORD_MAX_CHARS, PROVIDERS};
use crate::{
    error::{AppError, AppResult},
    text,
};

const MAX_URL_CHARS: usize = 2048;

/// A rule broken by the input: 400 `validation_error` naming the field.
pub(super) fn invalid(field: &str, reason: &str) -> AppError {
    AppError::validation(field, reason)
}

pub(super) fn email(raw: &str) -> AppResult<String> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(invalid("email", "must not be empty"));
    }
    if email.chars().count() > text::MAX_EMAIL_CHARS || !text::is_email(email) {
        return Err(invalid("email", "is not an email address"));
    }
    Ok(email.to_owned())
}

/// Kept exactly as typed (spaces count), `min..=256` characters.
pub(super) fn password(raw: &str, min_chars: usize) -> AppResult<&str> {
    let length = raw.chars().count();
    if length < min_chars {
        let reason = if min_chars <= 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min_chars} characters")
        };
        return Err(invalid("password", &reason));
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(invalid(
            "password",
            &format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(raw)
}

pub(super) fn provider(raw: &str) -> AppResult<&'static str> {
    let wanted = raw.trim();
    PROVIDERS
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            AppError::bad_request(
                "unsupported_provider",
                "provider must be google or linkedin",
            )
            .with_details(serde_json::json!({ "field": "provider", "allowed": PROVIDERS }))
        })
}

/// An absolute http(s) URL without credentials, on `frontend_origin` when one is configured
/// (so nobody can have Stack Auth deliver a sign-in code to their own site). Kept as given:
/// the token exchange must send the very same string.
pub(super) fn redirect_uri<'a>(raw: &'a str, frontend_origin: Option<&str>) -> AppResult<&'a str> {
    let raw = raw.trim();
    let refuse = |reason: &str| {
        Err(
            AppError::bad_request("invalid_redirect_uri", format!("redirect_uri {reason}"))
                .with_details(serde_json::json!({ "field": "redirect_uri", "reason": reason })),
        )
    };
    if raw.chars().count() > MAX_URL_CHARS {
        return refuse("is too long");
    }
    let Ok(url) = reqwest::Url::parse(raw) else {
        return refuse("is not an absolute URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return refuse("must be an http(s) URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not carry credentials");
    }
    if let Some(origin) = frontend_origin {
        if url.origin().ascii_serialization() != origin {
            return refuse("must be on the frontend's origin");
        }
    }
    Ok(raw)
}

/// A client-chosen OAuth value: `min..=max` characters of the URL-safe set PKCE allows.
pub(super) fn url_safe<'a>(
    field: &str,
    raw: &'a str,
    min: usize,
    max: usize,
) -> AppResult<&'a str> {
    let valid = (min..=max).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if valid {
        Ok(raw)
    } else {
        Err(invalid(
            field,
            &format!("must be {min} to {max} characters of A-Z a-z 0-9 - . _ ~"),
        ))
    }
}

/// 32 random bytes, base64url: a PKCE verifier (43 characters) or an OAuth state.
pub(super) fn random_url_safe() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0_u8; 32];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The system generator does not fail in practice; UUIDs come from it too.
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
pub(super) fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{
        super::{MAX_NAME_CHARS, PASSWORD_MIN_CHARS},
        *,
    };

    fn name(raw: &str) -> AppResult<String> {
        text::line("name", raw, MAX_NAME_CHARS)
    }

    #[test]
    fn emails_and_passwords_are_checked_before_stack_auth() {
        assert_eq!(email(" Ada@Example.com ").expect("ok"), "Ada@Example.com");
        for bad in ["", "ada", "ada@x", "a b@x.com"] {
            let err = email(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "validation_error")
            );
        }
        assert!(password("12345678", PASSWORD_MIN_CHARS).is_ok());
        assert!(
            password(" 1234567", PASSWORD_MIN_CHARS).is_ok(),
            "spaces count"
        );
        assert!(password(&"é".repeat(256), PASSWORD_MIN_CHARS).is_ok());
        for bad in ["", "1234567", &"x".repeat(257)] {
            let err = password(bad, PASSWORD_MIN_CHARS).expect_err("refused");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.details.expect("details")["field"], "password");
        }
        assert!(password("short", 1).is_ok(), "sign-in takes any length");
        assert!(password("", 1).is_err());
    }

    #[test]
    fn only_our_providers() {
        assert_eq!(provider("google").expect("ok"), "google");
        assert_eq!(provider(" LinkedIn ").expect("ok"), "linkedin");
        for bad in ["github", "", "google/../x"] {
            let err = provider(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "unsupported_provider")
            );
        }
    }

    #[test]
    fn redirects_stay_on_the_frontend() {
        let origin = Some("https://app.example.com");
        for good in [
            "https://app.example.com/auth/callback",
            "https://app.example.com:443/cb?x=1",
            " https://app.example.com ",
        ] {
            assert!(redirect_uri(good, origin).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example.com/cb",
            "http://app.example.com/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com@evil.com/cb",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "/relative",
            "",
        ] {
            let err = redirect_uri(bad, origin).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "invalid_redirect_uri")
            );
        }
        assert!(redirect_uri("https://anywhere.example/cb", None).is_ok());
        assert!(redirect_uri("ftp://anywhere.example/cb", None).is_err());
    }

    #[test]
    fn pkce_values() {
        let verifier = random_url_safe();
        assert_eq!(verifier.len(), 43);
        assert!(url_safe("v", &verifier, 43, 128).is_ok());
        assert_ne!(verifier, random_url_safe());
        // Computed independently (Python hashlib + base64.urlsafe_b64encode).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ92K9IXrrsmV8ZvjI1hAkF0aXkGWk"),
            "b-vqQhBSsayY08KmVzhArnNte14CwTTfGEp8vxOcaR0"
        );
        assert!(url_safe("state", "short", 8, 512).is_err());
        assert!(url_safe("state", "has space here", 8, 512).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Ada Lovelace ").expect("ok"), "Ada Lovelace");
        assert_eq!(
            name("Zoë 山田 <b>").expect("unicode and markup kept as text"),
            "Zoë 山田 <b>"
        );
        assert!(name("   ").is_err());
        assert!(name("a\u{0}b").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert!(name(&"é".repeat(100)).is_ok());
    }
}
