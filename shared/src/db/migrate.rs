//! Forward-only migrations embedded at build time. Concurrent runners (several cold starts, a
//! test run next to the dev server) take turns on an advisory lock; an applied migration whose
//! text changed is refused rather than silently skipped.
//!
//! The lock is transaction-scoped, taken first in each migration's transaction, so it is
//! correct through a transaction-mode pooler (Neon's PgBouncer) as well as on a direct
//! connection: a session lock taken through the pooler stays on whichever server connection
//! ran it, and its unlock may run on another, leaving the next runner waiting for good.

use deadpool_postgres::{Client, Transaction};

use crate::error::AppError;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Arbitrary constant naming this project's migration lock.
const LOCK_KEY: i64 = 0x6169_6361_6c6c;

/// Applies every pending migration in order, each in its own transaction. Returns how many ran.
pub async fn migrate(client: &mut Client) -> Result<usize, AppError> {
    // Under the lock too: two runners creating the table at once can both fail its catalog
    // insert despite IF NOT EXISTS.
    let tx = locked(client).await?;
    tx.batch_execute(sql::CREATE_HISTORY).await?;
    tx.commit().await?;
    let mut applied = 0;
    for migration in MIGRATIONS {
        if apply_if_pending(client, migration).await? {
            applied += 1;
        }
    }
    Ok(applied)
}

async fn locked(client: &mut Client) -> Result<Transaction<'_>, AppError> {
    let tx = client.transaction().await?;
    tx.execute(sql::LOCK, &[&LOCK_KEY]).await?;
    Ok(tx)
}

/// Checks and applies one migration in one transaction that holds the lock from the check to
/// the commit, so another runner sees either nothing of it or all of it, recorded.
async fn apply_if_pending(client: &mut Client, migration: &Migration) -> Result<bool, AppError> {
    let checksum = checksum(migration.sql);
    let tx = locked(client).await?;
    let row = tx
        .query_opt(sql::APPLIED_CHECKSUM, &[&migration.version])
        .await?;
    match row {
        Some(row) if row.try_get::<_, String>(0)? == checksum => {
            tx.commit().await?;
            return Ok(false);
        }
        Some(_) => {
            return Err(AppError::internal(format!(
                "migration V{}__{} changed after it was applied; write a new migration instead",
                migration.version, migration.name
            )))
        }
        None => {}
    }
    tx.batch_execute(migration.sql).await.map_err(|e| {
        AppError::internal(format!(
            "migration V{}__{}: {e:?}",
            migration.version, migration.name
        ))
    })?;
    tx.execute(
        sql::RECORD_APPLIED,
        &[&migration.version, &migration.name, &checksum],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        version = migration.version,
        name = migration.name,
        "applied migration"
    );
    Ok(true)
}

pub mod sql {
    crate::db::statements! {
        pub const CREATE_HISTORY = "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
            )";
        /// Held until the transaction ends; no unlock to send.
        pub const LOCK = "SELECT pg_advisory_xact_lock($1)";
        pub const APPLIED_CHECKSUM = "SELECT checksum FROM schema_migrations WHERE version = $1";
        pub const RECORD_APPLIED =
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";
    }
}

/// FNV-1a: enough to notice an edited file, no extra dependency.
fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
