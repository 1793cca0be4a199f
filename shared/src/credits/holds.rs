//! Credits held by calls that are placed but not finished: each recipient of a batch holds
//! one credit (a started minute) until its call's webhook settles it, its batch is cancelled,
//! or the hold lapses: [`HOLD_WINDOW`] after the batch's start or its last settled call,
//! whichever is later. [`active`] is what the outbound gate subtracts from the balance, so one
//! balance cannot back two batches (or a batch scheduled for later).

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::{error::AppResult, tenant::TenantId};

/// One started minute per call.
pub const CREDITS_PER_CALL: i64 = 1;

/// How long after its start, or its batch's last call that reported, a batch call may still
/// report before its hold lapses (`sql::holding!` says it in SQL).
pub const HOLD_WINDOW: chrono::Duration = chrono::Duration::hours(6);

/// A recipient of a batch, as submitted.
pub struct Recipient<'a> {
    pub recipient_id: String,
    pub phone_number: &'a str,
}

/// The credits the tenant's unfinished batch calls hold now.
pub async fn active(tx: &impl GenericClient, tenant: TenantId) -> AppResult<i64> {
    let row = tx
        .cached_query_one(sql::ACTIVE_HELD, &[tenant.as_uuid()])
        .await?;
    Ok(row.try_get(0)?)
}

/// Holds a credit for each recipient of a batch that starts at `starts_at`.
pub async fn hold_batch(
    tx: &impl GenericClient,
    tenant: TenantId,
    batch_id: Uuid,
    recipients: &[Recipient<'_>],
    starts_at: DateTime<Utc>,
) -> AppResult<()> {
    let ids: Vec<&str> = recipients.iter().map(|r| r.recipient_id.as_str()).collect();
    let phones: Vec<&str> = recipients.iter().map(|r| r.phone_number).collect();
    tx.cached_execute(
        sql::INSERT_FOR_RECIPIENTS,
        &[
            tenant.as_uuid(),
            &batch_id,
            &ids,
            &phones,
            &CREDITS_PER_CALL,
            &(starts_at + HOLD_WINDOW),
        ],
    )
    .await?;
    Ok(())
}

/// What identifies a batch call in its webhooks.
#[derive(Debug, Clone, Default)]
pub struct CallKeys<'a> {
    /// ElevenLabs' batch id and our recipient id (`metadata.batch_call`), when sent.
    pub batch_call_id: Option<&'a str>,
    pub recipient_id: Option<&'a str>,
    /// The number called: the fallback when the webhook names no batch.
    pub phone_number: Option<&'a str>,
}

/// The call's outcome is known (its usage is charged in the same transaction): its hold, if it
/// has one, stops holding. A conversation settles at most one hold. Returns whether one did.
pub async fn settle(
    tx: &impl GenericClient,
    tenant: TenantId,
    conversation_id: &str,
    keys: &CallKeys<'_>,
) -> AppResult<bool> {
    // Without a number or a batch recipient no hold can match (an inbound call, a chat).
    if keys.phone_number.is_none() && (keys.batch_call_id.is_none() || keys.recipient_id.is_none())
    {
        return Ok(false);
    }
    let settled: i64 = tx
        .cached_query_one(
            sql::SETTLE,
            &[
                tenant.as_uuid(),
                &conversation_id,
                &keys.batch_call_id,
                &keys.recipient_id,
                &keys.phone_number,
            ],
        )
        .await?
        .try_get("settled")?;
    Ok(settled == 1)
}

/// A cancelled batch holds nothing any more.
pub async fn release_batch(tx: &impl GenericClient, batch_id: Uuid) -> AppResult<u64> {
    Ok(tx.cached_execute(sql::RELEASE_BATCH, &[&batch_id]).await?)
}

/// Marks lapsed holds expired (they already stopped counting at `expires_at`); returns how
/// many. Run by the reconciler after it queued the conversations ElevenLabs did report.
pub async fn expire_lapsed(client: &impl GenericClient) -> AppResult<u64> {
    Ok(client.cached_execute(sql::EXPIRE_LAPSED, &[]).await?)
}

pub mod sql {
    /// Whether the hold `h` of the batch `b` still holds: its own window from the batch's
    /// start has not passed, or its batch's last settled call is within
    /// [`HOLD_WINDOW`](super::HOLD_WINDOW).
    macro_rules! holding {
        () => {
            concat!("h.status = 'held' AND ", holding_since!())
        };
    }
    /// `holding!`'s window alone: the hold `h`'s own or its batch `b`'s last settled call's.
    macro_rules! holding_since {
        () => {
            "greatest(h.expires_at, b.last_settled_at + interval '6 hours') > now()"
        };
    }
    pub(crate) use {holding, holding_since};

    crate::db::statements! {
        pub const ACTIVE_HELD = concat!("SELECT coalesce(sum(h.credits), 0)::bigint
            FROM credit_holds h JOIN call_batches b ON b.id = h.batch_id
            WHERE h.user_id = $1 AND ", holding!());
        pub const INSERT_FOR_RECIPIENTS = "INSERT INTO credit_holds (user_id, batch_id, recipient_id, phone_number, credits, expires_at)
            SELECT $1, $2, r.id, r.phone, $5, $6
            FROM unnest($3::text[], $4::text[]) AS r (id, phone)";
        /// Settles one hold (how many: 0 or 1) and, if it still held, notes its batch's
        /// progress, which keeps the batch's other holds: a late report of a batch whose
        /// holds lapsed does not bring them back. The hold is locked before its batch, as a
        /// cancellation locks them.
        pub const SETTLE = concat!("WITH settled AS (
                UPDATE credit_holds SET status = 'settled', conversation_id = $2, closed_at = now()
                WHERE id = (
                SELECT h.id FROM credit_holds h JOIN call_batches b ON b.id = h.batch_id
                WHERE h.user_id = $1 AND h.status = 'held'
                AND ((b.elevenlabs_batch_id = $3 AND h.recipient_id = $4) OR h.phone_number = $5)
                AND NOT EXISTS (SELECT 1 FROM credit_holds s WHERE s.conversation_id = $2)
                ORDER BY (b.elevenlabs_batch_id = $3 AND h.recipient_id = $4) IS TRUE DESC, h.id
                LIMIT 1
                FOR UPDATE OF h SKIP LOCKED)
                RETURNING batch_id, expires_at),
            progressed AS (
                UPDATE call_batches b SET last_settled_at = now()
                FROM settled h
                WHERE b.id = h.batch_id AND ", holding_since!(), ")
            SELECT count(*) AS settled FROM settled");
        pub const RELEASE_BATCH = "UPDATE credit_holds SET status = 'released', closed_at = now()
            WHERE batch_id = $1 AND status = 'held'";
        pub const EXPIRE_LAPSED = concat!("UPDATE credit_holds SET status = 'expired', closed_at = now()
            WHERE id IN (SELECT h.id FROM credit_holds h JOIN call_batches b ON b.id = h.batch_id
                WHERE h.status = 'held' AND NOT (", holding_since!(), "))");
    }
}

#[cfg(test)]
mod tests {
    use super::{sql, HOLD_WINDOW};

    #[test]
    fn the_sql_lapses_holds_after_the_same_window() {
        let hours = HOLD_WINDOW.num_hours();
        assert!(sql::ACTIVE_HELD.contains(&format!("interval '{hours} hours'")));
    }
}
