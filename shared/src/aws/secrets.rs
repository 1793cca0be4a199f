//! The application secret (ElevenLabs and Stripe keys, webhook secrets, SMTP password, the
//! contact-lookup secret, Stack Auth's secret server key) from Secrets Manager, cached for a
//! short TTL so an admin's rotation takes effect without a redeploy. A webhook secret's previous value stays valid until the
//! `*_previous_until` time the rotation wrote.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use tokio::sync::RwLock;

use super::sdk_error;
use crate::error::{AppError, AppResult};

#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct AppSecrets {
    pub elevenlabs_api_key: String,
    pub elevenlabs_webhook_secret: String,
    pub elevenlabs_webhook_secret_previous: Option<String>,
    /// Unix seconds until which the previous webhook secret is still accepted.
    pub elevenlabs_webhook_secret_previous_until: Option<i64>,
    pub stripe_secret_key: String,
    pub stripe_webhook_secret: String,
    pub stripe_webhook_secret_previous: Option<String>,
    pub stripe_webhook_secret_previous_until: Option<i64>,
    pub smtp_password: String,
    pub contact_lookup_secret: String,
    /// Stack Auth's `ssk_...` key, sent as `x-stack-secret-server-key` by the account flows.
    pub stack_secret_server_key: String,
}

/// Never prints a value: only which keys are set.
impl std::fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |value: &str| if value.is_empty() { "<unset>" } else { "<set>" };
        f.debug_struct("AppSecrets")
            .field("elevenlabs_api_key", &set(&self.elevenlabs_api_key))
            .field(
                "elevenlabs_webhook_secret",
                &set(&self.elevenlabs_webhook_secret),
            )
            .field("stripe_secret_key", &set(&self.stripe_secret_key))
            .field("stripe_webhook_secret", &set(&self.stripe_webhook_secret))
            .field("smtp_password", &set(&self.smtp_password))
            .field("contact_lookup_secret", &set(&self.contact_lookup_secret))
            .field(
                "stack_secret_server_key",
                &set(&self.stack_secret_server_key),
            )
            .finish_non_exhaustive()
    }
}

impl AppSecrets {
    /// The ElevenLabs webhook secrets accepted at `now`: the current one, then the previous
    /// one while its grace period lasts.
    pub fn elevenlabs_webhook_secrets(&self, now: i64) -> Vec<&str> {
        accepted(
            &self.elevenlabs_webhook_secret,
            self.elevenlabs_webhook_secret_previous.as_deref(),
            self.elevenlabs_webhook_secret_previous_until,
            now,
        )
    }

    pub fn stripe_webhook_secrets(&self, now: i64) -> Vec<&str> {
        accepted(
            &self.stripe_webhook_secret,
            self.stripe_webhook_secret_previous.as_deref(),
            self.stripe_webhook_secret_previous_until,
            now,
        )
    }
}

fn accepted<'a>(
    current: &'a str,
    previous: Option<&'a str>,
    until: Option<i64>,
    now: i64,
) -> Vec<&'a str> {
    let mut secrets = vec![current];
    if let (Some(previous), Some(until)) = (previous, until) {
        if now <= until && !previous.is_empty() {
            secrets.push(previous);
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

pub struct SecretStore {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    cached: RwLock<Option<(Instant, Arc<AppSecrets>)>>,
}

impl SecretStore {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: Duration) -> Self {
        Self {
            client,
            secret_id,
            ttl,
            cached: RwLock::new(None),
        }
    }

    pub async fn get(&self) -> AppResult<Arc<AppSecrets>> {
        if let Some((at, secrets)) = self.cached.read().await.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(secrets.clone());
            }
        }
        let mut cached = self.cached.write().await;
        if let Some((at, secrets)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(secrets.clone());
            }
        }
        match self.fetch().await {
            Ok(secrets) => {
                let secrets = Arc::new(secrets);
                *cached = Some((Instant::now(), secrets.clone()));
                Ok(secrets)
            }
            // Keep serving the last known values while Secrets Manager is unreachable.
            Err(err) => match cached.as_ref() {
                Some((_, secrets)) => {
                    tracing::warn!(error = %err, "using cached secrets");
                    Ok(secrets.clone())
                }
                None => Err(err),
            },
        }
    }

    /// Forgets the cached values: the next read fetches them (after this process rotated one).
    async fn invalidate(&self) {
        *self.cached.write().await = None;
    }

    async fn fetch(&self) -> AppResult<AppSecrets> {
        let text = self.secret_string().await?;
        // The parse error could quote a value, so only its position is kept.
        serde_json::from_str(&text).map_err(|e| {
            AppError::internal(format!(
                "the app secret is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// The whole secret document as stored now (not cached), keys unknown to [`AppSecrets`]
    /// included, for a rotation to change one key and write it all back.
    pub async fn document(&self) -> AppResult<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_str(&self.secret_string().await?) {
            Ok(serde_json::Value::Object(document)) => Ok(document),
            // The parse error could quote a value, so it is not passed on.
            _ => Err(AppError::internal("the app secret is not a JSON object")),
        }
    }

    /// Writes `document` as the secret's new version and forgets the cached values.
    pub async fn put_document(
        &self,
        document: &serde_json::Map<String, serde_json::Value>,
    ) -> AppResult<()> {
        let text =
            serde_json::to_string(document).map_err(|_| AppError::internal("secret JSON"))?;
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| sdk_error("writing the app secret", e))?;
        self.invalidate().await;
        Ok(())
    }

    async fn secret_string(&self) -> AppResult<String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| sdk_error("reading the app secret", e))?;
        output
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| AppError::internal("the app secret has no string value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_keys_but_never_values() {
        let secrets = AppSecrets {
            stripe_secret_key: "sk_live_very_secret_value".into(),
            ..AppSecrets::default()
        };
        let printed = format!("{secrets:?}");
        assert!(printed.contains("stripe_secret_key: \"<set>\""));
        assert!(!printed.contains("very_secret"));
    }

    #[test]
    fn previous_secret_is_accepted_only_during_its_grace_period() {
        let secrets = AppSecrets {
            elevenlabs_webhook_secret: "new".into(),
            elevenlabs_webhook_secret_previous: Some("old".into()),
            elevenlabs_webhook_secret_previous_until: Some(1000),
            ..AppSecrets::default()
        };
        assert_eq!(secrets.elevenlabs_webhook_secrets(999), ["new", "old"]);
        assert_eq!(secrets.elevenlabs_webhook_secrets(1000), ["new", "old"]);
        assert_eq!(secrets.elevenlabs_webhook_secrets(1001), ["new"]);
        assert!(AppSecrets::default()
            .elevenlabs_webhook_secrets(0)
            .is_empty());
    }
}
