//! The application's keys from Secrets Manager, in two secrets so each function reads only
//! what it uses: the app secret (ElevenLabs and Stripe API keys, SMTP password, Stack Auth's
//! secret server key) and the webhook secret (the webhook signing secrets and the
//! contact-lookup secret, all the internet-facing ingest function gets). Cached for a short
//! TTL so an admin's rotation takes effect without a redeploy. The previous value of a secret
//! another service sends us (webhook signatures, the contact-lookup header) stays valid until
//! the `*_previous_until` time the rotation wrote.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use tokio::sync::RwLock;

use serde_json::json;

use super::{Client, Service};
pub use crate::config::SecretIds;
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
    pub contact_lookup_secret_previous: Option<String>,
    pub contact_lookup_secret_previous_until: Option<i64>,
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

    /// The contact-lookup secrets ElevenLabs may send at `now`: the current one, then the
    /// previous one until it has the new one (the grace period).
    pub fn contact_lookup_secrets(&self, now: i64) -> Vec<&str> {
        accepted(
            &self.contact_lookup_secret,
            self.contact_lookup_secret_previous.as_deref(),
            self.contact_lookup_secret_previous_until,
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

/// Which secret a key lives in. The webhook signing secrets and the contact-lookup secret are
/// all the internet-facing ingest function may read; the platform's API keys (ElevenLabs,
/// Stripe, SMTP, Stack Auth) live in the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    App,
    Webhooks,
}

impl Document {
    pub const WEBHOOK_KEYS: [&'static str; 3] = [
        "elevenlabs_webhook_secret",
        "stripe_webhook_secret",
        "contact_lookup_secret",
    ];

    /// The document holding `key` (a key's `_previous` and `_previous_until` go with it).
    pub fn holding(key: &str) -> Self {
        let webhook = Self::WEBHOOK_KEYS.iter().any(|k| {
            key == *k
                || key
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with('_'))
        });
        if webhook {
            Self::Webhooks
        } else {
            Self::App
        }
    }
}

/// The string value of the secret `id` (its current version).
pub async fn get_string(client: &Client, id: &str) -> AppResult<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Value {
        secret_string: Option<String>,
    }
    let value: Value = client
        .json(
            Service::SecretsManager,
            "GetSecretValue",
            &json!({"SecretId": id}),
        )
        .await?;
    value
        .secret_string
        .ok_or_else(|| AppError::internal("a secret has no string value"))
}

pub struct SecretStore {
    aws: Client,
    ids: SecretIds,
    ttl: Duration,
    cached: RwLock<Option<(Instant, Arc<AppSecrets>)>>,
}

impl SecretStore {
    pub fn new(aws: Client, ids: SecretIds, ttl: Duration) -> Self {
        Self {
            aws,
            ids,
            ttl,
            cached: RwLock::new(None),
        }
    }

    /// The keys of every secret this function reads (unset keys empty), cached for the TTL; if
    /// a refresh fails the last values are kept.
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
            Err(err) => match cached.as_ref() {
                Some((_, secrets)) => {
                    tracing::warn!(error = %err, "using cached secrets");
                    Ok(secrets.clone())
                }
                None => Err(err),
            },
        }
    }

    /// The keys read again if this process read them more than `age` ago (else `None`): for
    /// a value another service sends us that matched none of the cached ones, which an admin
    /// may have just rotated. At most one read per `age`, however many values fail.
    pub async fn reread_if_older(&self, age: Duration) -> AppResult<Option<Arc<AppSecrets>>> {
        let mut cached = self.cached.write().await;
        if cached.as_ref().is_some_and(|(at, _)| at.elapsed() < age) {
            return Ok(None);
        }
        let secrets = Arc::new(self.fetch().await?);
        *cached = Some((Instant::now(), secrets.clone()));
        Ok(Some(secrets))
    }

    async fn invalidate(&self) {
        *self.cached.write().await = None;
    }

    async fn fetch(&self) -> AppResult<AppSecrets> {
        let merged = self.merged_document().await?;
        serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| {
            // The error names a field, never a value.
            AppError::internal(format!("the app secret is not the expected JSON: {e}"))
        })
    }

    /// Every readable document in one map (`rotated_at` times merged), as stored now.
    pub async fn merged_document(&self) -> AppResult<serde_json::Map<String, serde_json::Value>> {
        let mut merged = serde_json::Map::new();
        let mut ids: Vec<&str> = [&self.ids.app, &self.ids.webhooks]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        ids.dedup();
        for id in ids {
            for (key, value) in self.read(id).await? {
                match (merged.get_mut(&key), value) {
                    (Some(serde_json::Value::Object(times)), serde_json::Value::Object(more))
                        if key == "rotated_at" =>
                    {
                        times.extend(more);
                    }
                    (_, value) => {
                        merged.insert(key, value);
                    }
                }
            }
        }
        Ok(merged)
    }

    /// One secret document as stored now (not cached), keys unknown to [`AppSecrets`]
    /// included, for a rotation to change one key and write it all back.
    pub async fn document(
        &self,
        which: Document,
    ) -> AppResult<serde_json::Map<String, serde_json::Value>> {
        self.read(self.id_of(which)?).await
    }

    /// Writes `document` as the new version of its secret and forgets the cached values.
    pub async fn put_document(
        &self,
        which: Document,
        document: &serde_json::Map<String, serde_json::Value>,
    ) -> AppResult<()> {
        let text =
            serde_json::to_string(document).map_err(|_| AppError::internal("secret JSON"))?;
        let input = json!({"SecretId": self.id_of(which)?, "SecretString": text});
        self.aws
            .json::<serde::de::IgnoredAny>(Service::SecretsManager, "PutSecretValue", &input)
            .await?;
        self.invalidate().await;
        Ok(())
    }

    fn id_of(&self, which: Document) -> AppResult<&str> {
        let id = match which {
            Document::App => self.ids.app.as_deref(),
            Document::Webhooks => self.ids.webhooks.as_deref().or(self.ids.app.as_deref()),
        };
        id.ok_or_else(|| AppError::internal(format!("no secret configured for {which:?} keys")))
    }

    async fn read(&self, id: &str) -> AppResult<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_str(&get_string(&self.aws, id).await?) {
            Ok(serde_json::Value::Object(document)) => Ok(document),
            // The parse error could quote a value, so it is not passed on.
            _ => Err(AppError::internal("a secret is not a JSON object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_keys_and_their_previous_values_live_in_the_webhook_document() {
        for key in [
            "elevenlabs_webhook_secret",
            "elevenlabs_webhook_secret_previous",
            "stripe_webhook_secret_previous_until",
            "contact_lookup_secret",
        ] {
            assert_eq!(Document::holding(key), Document::Webhooks, "{key}");
        }
        for key in [
            "elevenlabs_api_key",
            "stripe_secret_key",
            "smtp_password",
            "stack_secret_server_key",
        ] {
            assert_eq!(Document::holding(key), Document::App, "{key}");
        }
        assert_eq!(Document::holding("stripe_webhook_secretive"), Document::App);
    }

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
