//! Rotating the application secret's keys: the admin writes a new value, which becomes a new
//! version of the app secret in Secrets Manager; running functions pick it up within their
//! cache TTL. A webhook signing secret keeps accepting its previous value for a grace period.
//! Values are never returned or logged: only whether a key is set, its last four characters
//! (for long values) and when it was rotated.

use crate::db::statements::Cached;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::audit::{self, Actor, Entry};
use crate::{
    aws::secrets::Document,
    error::{AppError, AppResult},
    AppState,
};

/// The keys an admin may rotate, and whether each is one another service sends us (a webhook
/// signing secret, the contact-lookup header ElevenLabs sends): those keep their previous value
/// valid during a grace period, until the other side has the new one.
pub const ROTATABLE: &[(&str, bool)] = &[
    ("elevenlabs_api_key", false),
    ("elevenlabs_webhook_secret", true),
    ("stripe_secret_key", false),
    ("stripe_webhook_secret", true),
    ("smtp_password", false),
    ("contact_lookup_secret", true),
    ("stack_secret_server_key", false),
];

/// Stripe lets an old endpoint secret live up to 24 hours after a roll; so do we by default.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretInfo {
    pub name: String,
    pub configured: bool,
    /// The last four characters of values of 12 characters or more; never the value.
    pub last4: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// Until when the previous value of a webhook secret is still accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<DateTime<Utc>>,
}

fn last4(value: &str) -> Option<String> {
    let chars: Vec<char> = value.chars().collect();
    (chars.len() >= 12).then(|| chars[chars.len() - 4..].iter().collect())
}

fn info(document: &Map<String, Value>, name: &str, webhook: bool, now: i64) -> SecretInfo {
    let value = document
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rotated_at = document
        .get("rotated_at")
        .and_then(|r| r.get(name))
        .and_then(Value::as_i64)
        .and_then(|t| Utc.timestamp_opt(t, 0).single());
    let previous_valid_until = webhook
        .then(|| document.get(&format!("{name}_previous_until")))
        .flatten()
        .and_then(Value::as_i64)
        .filter(|until| *until >= now)
        .and_then(|t| Utc.timestamp_opt(t, 0).single());
    SecretInfo {
        name: name.to_owned(),
        configured: !value.is_empty(),
        last4: last4(value),
        rotated_at,
        previous_valid_until,
    }
}

/// What is set, without values.
pub async fn describe(state: &AppState) -> AppResult<Vec<SecretInfo>> {
    let document = state.secrets().merged_document().await?;
    let now = Utc::now().timestamp();
    Ok(ROTATABLE
        .iter()
        .map(|(name, webhook)| info(&document, name, *webhook, now))
        .collect())
}

/// Checks a new value's shape before it replaces a working one.
fn validate(name: &str, value: &str) -> AppResult<()> {
    let length = value.chars().count();
    if !(8..=4096).contains(&length) {
        return Err(AppError::validation(
            "value",
            "must be 8 to 4096 characters",
        ));
    }
    // Keys go out in headers and signatures: a pasted zero-width space or byte-order mark
    // would break every request after the rotation.
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::validation(
            "value",
            "must be visible ASCII characters only (no spaces, controls or invisible characters)",
        ));
    }
    let prefixes: &[&str] = match name {
        "stripe_secret_key" => &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        "stripe_webhook_secret" => &["whsec_"],
        _ => &[],
    };
    if !prefixes.is_empty() && !prefixes.iter().any(|p| value.starts_with(p)) {
        return Err(AppError::validation(
            "value",
            format!("a {name} starts with {}", prefixes.join(" or ")),
        ));
    }
    Ok(())
}

/// Writes `value` as the new `name` and records it in the audit log. Rotations are serialized
/// (a Postgres advisory lock), so two admins rotating different keys never lose each other's
/// write to the one secret document.
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    name: &str,
    value: &str,
    grace_seconds: Option<i64>,
) -> AppResult<SecretInfo> {
    let (_, webhook) = ROTATABLE
        .iter()
        .find(|(known, _)| *known == name)
        .ok_or_else(|| AppError::not_found("secret"))?;
    validate(name, value)?;
    let grace = grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(AppError::validation(
            "grace_seconds",
            format!("must be 0 to {MAX_GRACE_SECONDS}"),
        ));
    }
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    tx.cached_execute(sql::LOCK_ROTATION, &[]).await?;
    let which = Document::holding(name);
    let mut document = state.secrets().document(which).await?;
    let now = Utc::now().timestamp();
    let previous = document
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if previous == value {
        return Err(AppError::conflict(
            "secret_unchanged",
            "the new value is the current one",
        ));
    }
    if *webhook && !previous.is_empty() && grace > 0 {
        document.insert(format!("{name}_previous"), json!(previous));
        document.insert(format!("{name}_previous_until"), json!(now + grace));
    } else if *webhook {
        document.remove(&format!("{name}_previous"));
        document.remove(&format!("{name}_previous_until"));
    }
    document.insert(name.to_owned(), json!(value));
    let rotated = document.entry("rotated_at").or_insert_with(|| json!({}));
    if let Value::Object(times) = rotated {
        times.insert(name.to_owned(), json!(now));
    }
    let described = info(&document, name, *webhook, now);
    audit::record(
        &tx,
        actor,
        Entry {
            action: "secret.rotated",
            target_type: "secret",
            target_id: name.to_owned(),
            details: json!({
                "last4": described.last4,
                "previous_valid_until": described.previous_valid_until,
            }),
        },
    )
    .await?;
    state.secrets().put_document(which, &document).await?;
    tx.commit().await?;
    Ok(described)
}

pub mod sql {
    crate::db::statements! {
        /// Serializes rotations: each reads the secret document, changes one key and writes it back.
        pub const LOCK_ROTATION = "SELECT pg_advisory_xact_lock(hashtext('app-secret-rotation'))";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_values_show_their_last_four() {
        assert_eq!(last4("sk_test_abcdefgh1234").as_deref(), Some("1234"));
        assert_eq!(last4("short"), None);
    }

    #[test]
    fn values_are_checked_before_they_replace_a_working_key() {
        assert!(validate("stripe_secret_key", "sk_test_0123456789").is_ok());
        assert!(validate("stripe_secret_key", "pk_test_0123456789").is_err());
        assert!(validate("stripe_webhook_secret", "whsec_0123456789").is_ok());
        assert!(validate("elevenlabs_api_key", "has space inside").is_err());
        assert!(validate("elevenlabs_api_key", "short").is_err());
        assert!(validate("elevenlabs_api_key", "sk_0123456789\u{200b}").is_err());
        assert!(validate("elevenlabs_api_key", "\u{feff}sk_0123456789").is_err());
        assert!(validate("contact_lookup_secret", "clé-0123456789").is_err());
    }
}
