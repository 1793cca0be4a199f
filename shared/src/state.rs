//! What every handler shares: config, the database pool, the token verifier and an HTTP client.
//! Built once per process (a Lambda cold start) and cloned cheaply into each request.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::RwLock;

use crate::{
    aws::{self, secrets::SecretStore},
    clients::{elevenlabs::ElevenLabs, stack_auth::StackAuth},
    config::Config,
    db,
    error::{AppError, AppResult},
    settings::{self, Settings},
    telemetry,
    tokens::TokenVerifier,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: db::Database,
    verifier: TokenVerifier,
    http: reqwest::Client,
    aws: aws::Client,
    secrets: SecretStore,
    settings: RwLock<Option<(Instant, Arc<Settings>)>>,
    tenant_limiter: crate::ratelimit::TenantLimiter,
    remote_reads: crate::ratelimit::TenantPermits,
    cached_responses: crate::aws::cache::Memory,
    recording_links: crate::aws::blobs::SignedLinks,
    known_accounts: crate::tenant::KnownAccounts,
}

impl AppState {
    /// Reads the config from the environment; a missing or malformed value is an error that
    /// names the variable.
    pub async fn from_env() -> Result<Self, BoxError> {
        Self::new(Config::from_env()?).await
    }

    pub async fn new(config: Config) -> Result<Self, BoxError> {
        telemetry::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("ai-calling-backend/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let verifier = TokenVerifier::new(&config.auth, http.clone());
        let aws = aws::Client::default();
        let db = db::Database::new(config.database.clone(), aws.clone());
        let secrets = SecretStore::new(
            aws.clone(),
            config.aws.secrets.clone(),
            config.aws.secrets_ttl,
        );
        let tenant_limiter = crate::ratelimit::TenantLimiter::new(config.tenant_rate);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                verifier,
                http,
                aws,
                secrets,
                settings: RwLock::new(None),
                tenant_limiter,
                remote_reads: crate::ratelimit::TenantPermits::new(
                    crate::ratelimit::REMOTE_READS_PER_TENANT,
                ),
                cached_responses: crate::aws::cache::Memory::default(),
                recording_links: crate::aws::blobs::SignedLinks::default(),
                known_accounts: crate::tenant::KnownAccounts::default(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &db::Database {
        &self.inner.db
    }

    pub fn verifier(&self) -> &TokenVerifier {
        &self.inner.verifier
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The response cache's entries kept in this process (see [`crate::aws::cache::Memory`]).
    pub fn cached_responses(&self) -> &crate::aws::cache::Memory {
        &self.inner.cached_responses
    }

    /// Recording links already signed in this process (see [`crate::aws::blobs::SignedLinks`]).
    pub fn recording_links(&self) -> &crate::aws::blobs::SignedLinks {
        &self.inner.recording_links
    }

    /// The account each token subject was last authenticated as, in this process.
    pub fn known_accounts(&self) -> &crate::tenant::KnownAccounts {
        &self.inner.known_accounts
    }

    /// The AWS client, built on first use.
    pub fn aws(&self) -> &aws::Client {
        &self.inner.aws
    }

    /// Where rate-limit windows are counted.
    pub async fn rate_counter(&self) -> crate::ratelimit::Counter<'_> {
        crate::ratelimit::Counter {
            dynamodb: self.aws(),
            table: &self.config().aws.table,
        }
    }

    /// The ElevenLabs client with the current API key (rotated by the admin).
    pub async fn elevenlabs(&self) -> AppResult<ElevenLabs> {
        let secrets = self.secrets().get().await?;
        if secrets.elevenlabs_api_key.is_empty() {
            return Err(AppError::unavailable(
                "elevenlabs_not_configured",
                "the ElevenLabs API key is not set in the application secret",
            ));
        }
        Ok(ElevenLabs::new(
            self.http().clone(),
            self.config().elevenlabs_base_url.clone(),
            secrets.elevenlabs_api_key.clone(),
            self.config().elevenlabs_retry,
        ))
    }

    /// The Stack Auth REST client with the current server key.
    pub async fn stack_auth(&self) -> AppResult<StackAuth> {
        let secrets = self.secrets().get().await?;
        if secrets.stack_secret_server_key.is_empty() {
            return Err(AppError::unavailable(
                "stack_auth_not_configured",
                "the Stack Auth server key is not set in the application secret",
            ));
        }
        let config = self.config();
        StackAuth::configured(
            config.stack.api_url.clone(),
            config.auth.project_id.clone(),
            secrets.stack_secret_server_key.clone(),
            config.stack.publishable_client_key.clone(),
            config.stack.retry,
        )
    }

    pub fn tenant_limiter(&self) -> &crate::ratelimit::TenantLimiter {
        &self.inner.tenant_limiter
    }

    /// Each tenant's share of concurrent ElevenLabs reads (the workspace quota is shared).
    pub fn remote_reads(&self) -> &crate::ratelimit::TenantPermits {
        &self.inner.remote_reads
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.inner.secrets
    }

    /// The admin's settings, cached as long as secrets are (an admin's change reaches every
    /// function within that time).
    pub async fn settings(&self) -> AppResult<Arc<Settings>> {
        let ttl = self.config().aws.secrets_ttl;
        if let Some((at, settings)) = self.inner.settings.read().await.as_ref() {
            if at.elapsed() < ttl {
                return Ok(settings.clone());
            }
        }
        let client = self.db().get().await?;
        let settings = Arc::new(settings::load(&client, self.config()).await?);
        *self.inner.settings.write().await = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Forgets the cached settings (after this process changed them).
    pub async fn invalidate_settings(&self) {
        *self.inner.settings.write().await = None;
    }

    /// The webhook queue's URL, configured for the functions that use it.
    pub fn webhook_queue_url(&self) -> crate::error::AppResult<&str> {
        self.config()
            .aws
            .webhook_queue_url
            .as_deref()
            .ok_or_else(|| crate::AppError::internal("WEBHOOK_QUEUE_URL is not configured"))
    }
}
