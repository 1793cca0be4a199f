//! Batches already submitted: cancelling the ones that may still place calls when their
//! tenant is suspended, so a suspended account spends nothing more.

use crate::db::statements::Cached;
use uuid::Uuid;

use crate::{credits::holds, error::AppResult, tenant::TenantId, AppState};

/// Cancels at ElevenLabs every batch of the tenant that can still place calls (scheduled for
/// later, or with calls still holding credits) and releases their holds. Safe to repeat.
/// Returns how many were cancelled.
pub async fn cancel_open(state: &AppState, tenant: TenantId) -> AppResult<usize> {
    let mut db = state.db().get().await?;
    let tx = db.transaction().await?;
    // After any placement in flight (it holds this lock while ElevenLabs answers): its batch
    // is listed here, or it found the account suspended.
    tx.cached_execute(
        super::outbound::sql::LOCK_TENANT_PLACEMENTS,
        &[tenant.as_uuid()],
    )
    .await?;
    let open: Vec<(Uuid, String)> = tx
        .cached_query(sql::OPEN_OF_TENANT, &[tenant.as_uuid()])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<AppResult<_>>()?;
    tx.commit().await?;
    drop(db);
    if open.is_empty() {
        return Ok(0);
    }
    let client = state.elevenlabs().await?;
    // One batch ElevenLabs will not cancel must not leave the others placing calls: each is
    // tried, and the first failure is answered once all were.
    let mut failed = None;
    for (batch_id, remote_id) in &open {
        match client.cancel_batch(remote_id).await {
            Ok(_) => {}
            // Gone at ElevenLabs: it places nothing more.
            Err(err) if err.is_not_found() => {}
            Err(err) => {
                tracing::warn!(%tenant, %batch_id, error = %err, "a batch was not cancelled");
                failed.get_or_insert(err);
                continue;
            }
        }
        let mut db = state.db().get().await?;
        let tx = db.transaction().await?;
        // The holds first, then the batch: a call's settle locks them in that order too.
        holds::release_batch(&tx, *batch_id).await?;
        tx.cached_execute(sql::MARK_CANCELLED, &[batch_id]).await?;
        tx.commit().await?;
        tracing::info!(%tenant, %batch_id, "cancelled a batch of a suspended tenant");
    }
    match failed {
        Some(err) => Err(err.into()),
        None => Ok(open.len()),
    }
}

pub mod sql {
    use crate::credits::holds::sql::{holding, holding_since};

    crate::db::statements! {
        pub const OPEN_OF_TENANT = concat!("SELECT b.id, b.elevenlabs_batch_id FROM call_batches b
            WHERE b.user_id = $1 AND b.status <> 'cancelled'
              AND (b.scheduled_at > now()
                   OR EXISTS (SELECT 1 FROM credit_holds h
                              WHERE h.batch_id = b.id AND ", holding!(), "))");
        pub const MARK_CANCELLED = "UPDATE call_batches SET status = 'cancelled' WHERE id = $1";
    }
}
