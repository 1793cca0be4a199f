//! The daily call rollup (`daily_agent_stats`), beside the lead rollup in `leads::rollup`. It
//! always moves by the difference between a call's row before and after an event, so a late,
//! longer transcription or a success verdict that arrives after the call ended is counted
//! exactly once, and a call whose day changes takes all its figures, its credits included,
//! to the new day.

use crate::db::statements::Cached;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::event::CallStatus;
use crate::{error::AppResult, tenant::TenantId};

/// The columns [`Figures::from_row`] reads, for every statement that returns them.
macro_rules! figure_columns {
    () => {
        "type, status, call_successful, duration_seconds, credits_charged, started_at, created_at"
    };
}
pub(crate) use figure_columns;

/// What a call contributes to the rollup, read from its row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// The UTC day, as V0012 counts it (never the database session's time zone).
    day: NaiveDate,
    terminal: bool,
    chat: bool,
    completed: bool,
    failed: bool,
    successful: bool,
    duration: i64,
    credits: i64,
}

impl Figures {
    /// A call not stored yet: it counts nowhere.
    pub const NONE: Self = Self {
        day: NaiveDate::MIN,
        terminal: false,
        chat: false,
        completed: false,
        failed: false,
        successful: false,
        duration: 0,
        credits: 0,
    };

    pub fn from_row(row: &Row) -> AppResult<Self> {
        let status = CallStatus::parse(row.try_get("status")?);
        Ok(Self {
            day: match row.try_get::<_, Option<DateTime<Utc>>>("started_at")? {
                Some(started) => started,
                None => row.try_get::<_, DateTime<Utc>>("created_at")?,
            }
            .date_naive(),
            terminal: status.is_terminal(),
            chat: row.try_get::<_, &str>("type")? == "chat",
            completed: status == CallStatus::Completed,
            failed: status == CallStatus::Failed,
            successful: row.try_get::<_, Option<&str>>("call_successful")? == Some("success"),
            duration: i64::from(row.try_get::<_, i32>("duration_seconds")?),
            credits: row.try_get("credits_charged")?,
        })
    }
}

/// Moves the rollup of `agent` from the call as it was (`before`) to the call as it is now
/// (`after`). A call counts, with the credits charged for it, once it is finished, as
/// `daily_agent_stats_recomputed` (V0012) counts it.
pub async fn apply(
    tx: &impl GenericClient,
    tenant: TenantId,
    agent: Uuid,
    before: &Figures,
    after: &Figures,
) -> AppResult<()> {
    if after == before {
        return Ok(());
    }
    if before.terminal {
        add(tx, tenant, agent, before, -1).await?;
    }
    if after.terminal {
        add(tx, tenant, agent, after, 1).await?;
    }
    Ok(())
}

async fn add(
    tx: &impl GenericClient,
    tenant: TenantId,
    agent: Uuid,
    figures: &Figures,
    sign: i32,
) -> AppResult<()> {
    let count = |yes: bool| if yes { sign } else { 0 };
    tx.cached_execute(
        sql::ADD_TO_DAY,
        &[
            tenant.as_uuid(),
            &agent,
            &figures.day,
            &count(!figures.chat),
            &count(figures.chat),
            &count(figures.completed),
            &count(figures.failed),
            &count(figures.successful),
            &(figures.duration * i64::from(sign)),
            &(figures.credits * i64::from(sign)),
        ],
    )
    .await?;
    Ok(())
}

pub mod sql {
    /// The first day whose rollup changes on time: today (UTC), and until 01:00 UTC yesterday
    /// too. The admin's analytics hold days as closed (their `LAST_CLOSED_DAY`) an hour later:
    /// a reader whose snapshot misses a change may have begun up to an hour after the change's
    /// transaction did (none lasts an hour), and every day it holds as closed must be late
    /// here.
    macro_rules! late_before {
        () => {
            "((now() - interval '1 hour') AT TIME ZONE 'UTC')::date"
        };
    }
    /// `late_before!`, an expression of `now()`.
    pub const LATE_BEFORE: &str = late_before!();

    crate::db::statements! {
        /// Adds to the day's rollup. A change to a day before [`LATE_BEFORE`] is a late one: it
        /// moves the count of late changes on, in the same transaction, so that the admin's
        /// analytics read the sums of their closed days again (V0028). The tenant's row of the
        /// day follows (V0035's trigger).
        pub const ADD_TO_DAY = concat!(
            "WITH late AS (
                UPDATE closed_day_changes SET late = late + 1
                WHERE $3::date < ", late_before!(), ")
            INSERT INTO daily_agent_stats
                (user_id, agent_id, day, calls, chats, completed, failed, successful, duration_seconds, credits_used)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (user_id, agent_id, day) DO UPDATE SET
                calls = daily_agent_stats.calls + EXCLUDED.calls,
                chats = daily_agent_stats.chats + EXCLUDED.chats,
                completed = daily_agent_stats.completed + EXCLUDED.completed,
                failed = daily_agent_stats.failed + EXCLUDED.failed,
                successful = daily_agent_stats.successful + EXCLUDED.successful,
                duration_seconds = daily_agent_stats.duration_seconds + EXCLUDED.duration_seconds,
                credits_used = daily_agent_stats.credits_used + EXCLUDED.credits_used"
        );
    }
}
