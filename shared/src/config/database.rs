//! Where the database connection strings come from.

use super::{malformed, ConfigError, Env};

/// Where the connection strings come from. Each source may name a direct connection next to
/// the usual one: deployed, the usual one goes through Neon's pooler (PgBouncer in transaction
/// mode), where session state does not outlive a transaction; what needs a session
/// (migrations) connects directly when a direct URL is given.
#[derive(Clone)]
pub enum DatabaseSource {
    /// `DATABASE_URL` and, optionally, `DATABASE_DIRECT_URL` (local stacks, tests, tools).
    Url { url: String, direct: Option<String> },
    /// `DATABASE_SECRET_ID`: a Secrets Manager secret `{"database_url": "...",
    /// "database_direct_url": "..."}` (the second optional), so no URL (with its password) is a
    /// plaintext environment variable of any function.
    Secret(String),
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The URLs hold the password.
            Self::Url { direct, .. } => f
                .debug_struct("Url")
                .field("url", &"<redacted>")
                .field("direct", &direct.as_ref().map(|_| "<redacted>"))
                .finish(),
            Self::Secret(id) => f.debug_tuple("Secret").field(id).finish(),
        }
    }
}

/// Deployed, the URLs are a secret (DATABASE_SECRET_ID), read when first needed; locally and in
/// the tests they are given directly.
pub(super) fn source<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<DatabaseSource, ConfigError> {
    match (
        env.optional("DATABASE_URL"),
        env.optional("DATABASE_SECRET_ID"),
    ) {
        (Some(url), _) => {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| malformed("DATABASE_URL", e))?;
            let direct = env.optional("DATABASE_DIRECT_URL");
            if let Some(direct) = &direct {
                direct
                    .parse::<tokio_postgres::Config>()
                    .map_err(|e| malformed("DATABASE_DIRECT_URL", e))?;
            }
            Ok(DatabaseSource::Url { url, direct })
        }
        (None, Some(secret_id)) => Ok(DatabaseSource::Secret(secret_id)),
        (None, None) => Err(ConfigError::Missing("DATABASE_URL")),
    }
}
