//! What Stripe's events do to a purchase, each inside the processor's transaction (with the
//! event's dedup row). The purchase row is locked first, so concurrent events of one purchase
//! apply one after another; every step is idempotent, so redeliveries and any order of arrival
//! end in the same state:
//! - paid: the package's credits once (ledger reference = the session id), then any refund
//!   Stripe reported before the payment event arrived;
//! - refunded: the refunded share of the credits, from Stripe's cumulative refunded amount, so
//!   only the growth since the last refund event is taken back.

use crate::db::statements::Cached;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{Purchase, PurchaseStatus};
use crate::{
    credits::{self, CreditChange, CreditKind},
    email::{self, Email},
    error::AppResult,
    tenant::TenantId,
};

/// The parts of a Checkout Session event we act on.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub session_id: String,
    /// From `client_reference_id`, else `metadata.purchase_id`.
    pub purchase_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub payment_intent: Option<String>,
}

/// The parts of a `charge.refunded` event we act on.
#[derive(Debug, Clone, Default)]
pub struct RefundFacts {
    pub charge_id: String,
    pub purchase_id: Option<Uuid>,
    pub payment_intent: Option<String>,
    /// Cumulative, in minor units.
    pub amount_refunded: i64,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Applied,
    /// Nothing to do (already in that state, or a later state wins).
    Unchanged(String),
    /// Held for a person; no credits moved.
    Review(String),
    /// The event names no purchase of ours.
    UnknownPurchase(String),
}

/// Checkout completed with the money received (`completed` paid, or `async_payment_succeeded`).
pub async fn session_paid(tx: &impl GenericClient, facts: &SessionFacts) -> AppResult<Effect> {
    let Some(purchase) = lock_for_session(tx, facts).await? else {
        return Ok(unknown(facts));
    };
    if purchase.status == PurchaseStatus::Paid {
        // Paid before its event came: an administrator approved it from review (its Checkout
        // answer lost, it had no session). The event names its payment, by which a dispute
        // finds the purchase.
        if mismatch(&purchase, facts).is_none() {
            record_checkout_session(tx, purchase.id, facts).await?;
        }
        return Ok(Effect::Unchanged("already paid".into()));
    }
    if let Some(reason) = mismatch(&purchase, facts) {
        hold_for_review(tx, purchase.id, &reason, facts.payment_intent.as_deref()).await?;
        return Ok(Effect::Review(reason));
    }
    record_checkout_session(tx, purchase.id, facts).await?;
    let intent = facts
        .payment_intent
        .clone()
        .or(purchase.payment_intent.clone());
    fulfil(tx, purchase, facts.session_id.clone(), intent).await?;
    Ok(Effect::Applied)
}

/// An admin's decision on a purchase held for review: the payment was checked at Stripe, so
/// the purchase is paid and its credits granted (once: a later payment event finds it paid).
pub async fn approve_review(tx: &impl GenericClient, purchase: Uuid) -> AppResult<Purchase> {
    let row = tx
        .cached_query_opt(sql::LOCK_BY_ID, &[&purchase])
        .await?
        .ok_or_else(|| crate::error::AppError::not_found("purchase"))?;
    let held = Purchase::try_from(&row)?;
    if held.status != PurchaseStatus::Review {
        return Err(crate::error::AppError::conflict(
            "not_held_for_review",
            format!(
                "the purchase is {}, not held for review",
                held.status.as_str()
            ),
        ));
    }
    let reference = held
        .session_id
        .clone()
        .unwrap_or_else(|| format!("manual:{}", held.id));
    let intent = held.payment_intent.clone();
    fulfil(tx, held, reference, intent).await
}

/// Marks the purchase paid, grants its credits (ledger reference: the session), takes back
/// any refund Stripe reported before, and queues the receipt.
async fn fulfil(
    tx: &impl GenericClient,
    purchase: Purchase,
    reference: String,
    payment_intent: Option<String>,
) -> AppResult<Purchase> {
    tx.cached_execute(sql::MARK_PAID, &[&purchase.id]).await?;
    let granted = credits::apply(
        tx,
        &CreditChange {
            tenant: TenantId::from_trusted(purchase.user_id),
            kind: CreditKind::Purchase,
            amount: purchase.credits,
            reference,
            description: format!("Purchase: {}", purchase.package_name),
            stripe_payment_id: payment_intent,
        },
    )
    .await?;
    let paid = Purchase {
        status: PurchaseStatus::Paid,
        review_reason: None,
        ..purchase
    };
    let balance = settle_refunds(tx, &paid)
        .await?
        .unwrap_or(granted.entry().balance_after);
    if let Some(recipient) = owner_email(tx, paid.user_id).await? {
        let receipt = email::Receipt {
            user_id: paid.user_id,
            purchase_id: paid.id,
            package_name: &paid.package_name,
            credits: paid.credits,
            amount: paid.amount,
            currency: &paid.currency,
            balance,
        };
        email::queue(tx, &Email::receipt(&recipient, &receipt)).await?;
    }
    Ok(paid)
}

/// Checkout completed, payment still on its way (a delayed method).
pub async fn session_processing(
    tx: &impl GenericClient,
    facts: &SessionFacts,
) -> AppResult<Effect> {
    move_to(
        tx,
        facts,
        PurchaseStatus::Processing,
        &["pending", "review"],
    )
    .await
}

/// The delayed payment failed.
pub async fn session_failed(tx: &impl GenericClient, facts: &SessionFacts) -> AppResult<Effect> {
    move_to(
        tx,
        facts,
        PurchaseStatus::Failed,
        &["pending", "processing", "review"],
    )
    .await
}

/// The session expired unpaid.
pub async fn session_expired(tx: &impl GenericClient, facts: &SessionFacts) -> AppResult<Effect> {
    move_to(tx, facts, PurchaseStatus::Expired, &["pending", "review"]).await
}

/// A refund (full or partial) of a purchase's charge.
pub async fn charge_refunded(tx: &impl GenericClient, facts: &RefundFacts) -> AppResult<Effect> {
    let row = match facts.purchase_id {
        Some(id) => tx.cached_query_opt(sql::LOCK_BY_ID, &[&id]).await?,
        None => None,
    };
    let row = match (row, &facts.payment_intent) {
        (Some(row), _) => Some(row),
        (None, Some(intent)) => {
            tx.cached_query_opt(sql::LOCK_BY_PAYMENT_INTENT, &[intent])
                .await?
        }
        (None, None) => None,
    };
    let Some(purchase) = row.as_ref().map(Purchase::try_from).transpose()? else {
        return Ok(Effect::UnknownPurchase(format!(
            "charge {} refers to no purchase",
            facts.charge_id
        )));
    };
    if let Some(currency) = &facts.currency {
        if !currency.eq_ignore_ascii_case(&purchase.currency) {
            let reason = format!(
                "refund in {currency}, the purchase was in {}",
                purchase.currency
            );
            return Ok(Effect::Review(reason));
        }
    }
    let refunded = facts.amount_refunded.clamp(0, purchase.amount);
    if refunded <= purchase.amount_refunded {
        return Ok(Effect::Unchanged(
            "no refund beyond what was recorded".into(),
        ));
    }
    tx.cached_execute(sql::SET_AMOUNT_REFUNDED, &[&purchase.id, &refunded])
        .await?;
    let updated = Purchase {
        amount_refunded: refunded,
        ..purchase
    };
    // Before the payment is recorded the amount is only remembered; paying settles it.
    settle_refunds(tx, &updated).await?;
    Ok(Effect::Applied)
}

/// Takes back the credits of the refunded share not taken back yet; returns the new balance
/// when it changed. A partial refund takes the proportional credits, rounded down.
async fn settle_refunds(tx: &impl GenericClient, purchase: &Purchase) -> AppResult<Option<i64>> {
    if purchase.status != PurchaseStatus::Paid {
        return Ok(None);
    }
    let owed = refunded_credits(purchase.credits, purchase.amount_refunded, purchase.amount);
    let delta = owed - purchase.credits_refunded;
    if delta <= 0 {
        return Ok(None);
    }
    let applied = credits::apply(
        tx,
        &CreditChange {
            tenant: TenantId::from_trusted(purchase.user_id),
            kind: CreditKind::Refund,
            amount: -delta,
            reference: format!("refund:{}:{owed}", purchase.id),
            description: format!("Refund: {}", purchase.package_name),
            stripe_payment_id: None,
        },
    )
    .await?;
    tx.cached_execute(sql::SET_CREDITS_REFUNDED, &[&purchase.id, &owed])
        .await?;
    Ok(Some(applied.entry().balance_after))
}

/// The credits a refund of `refunded` out of `amount` takes back: proportional, rounded down.
pub fn refunded_credits(credits: i64, refunded: i64, amount: i64) -> i64 {
    if amount <= 0 {
        return 0;
    }
    let share = i128::from(credits) * i128::from(refunded.clamp(0, amount)) / i128::from(amount);
    i64::try_from(share).unwrap_or(credits)
}

async fn move_to(
    tx: &impl GenericClient,
    facts: &SessionFacts,
    status: PurchaseStatus,
    from: &[&str],
) -> AppResult<Effect> {
    let Some(purchase) = lock_for_session(tx, facts).await? else {
        return Ok(unknown(facts));
    };
    if !from.contains(&purchase.status.as_str()) {
        return Ok(Effect::Unchanged(format!(
            "the purchase is {}",
            purchase.status.as_str()
        )));
    }
    tx.cached_execute(
        sql::SET_STATUS,
        &[&purchase.id, &status.as_str(), &facts.session_id],
    )
    .await?;
    Ok(Effect::Applied)
}

/// Finds and locks the purchase a session event names (by our id, else by the session id).
async fn lock_for_session(
    tx: &impl GenericClient,
    facts: &SessionFacts,
) -> AppResult<Option<Purchase>> {
    let row = tx
        .cached_query_opt(
            sql::LOCK_BY_ID_OR_SESSION,
            &[&facts.purchase_id, &facts.session_id],
        )
        .await?;
    row.as_ref().map(Purchase::try_from).transpose()
}

/// Keeps the session and payment of Stripe's event on the purchase it matches.
async fn record_checkout_session(
    tx: &impl GenericClient,
    purchase: Uuid,
    facts: &SessionFacts,
) -> AppResult<()> {
    tx.cached_execute(
        sql::RECORD_CHECKOUT_SESSION,
        &[&purchase, &facts.session_id, &facts.payment_intent],
    )
    .await?;
    Ok(())
}

/// Why Stripe's payment does not match the purchase, if it does not.
fn mismatch(purchase: &Purchase, facts: &SessionFacts) -> Option<String> {
    if let Some(session) = &purchase.session_id {
        if session != &facts.session_id {
            return Some(format!(
                "paid through session {} but the purchase has session {session}",
                facts.session_id
            ));
        }
    }
    if facts
        .tenant_id
        .is_some_and(|tenant| tenant != purchase.user_id)
    {
        return Some("the session's tenant is not the purchase's".into());
    }
    let currency_matches = facts
        .currency
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case(&purchase.currency));
    if facts.amount_total != Some(purchase.amount) || !currency_matches {
        return Some(format!(
            "Stripe reports {} {}, the package costs {} {}",
            facts
                .amount_total
                .map_or_else(|| "no amount".to_owned(), |a| a.to_string()),
            facts.currency.as_deref().unwrap_or("(no currency)"),
            purchase.amount,
            purchase.currency
        ));
    }
    None
}

async fn hold_for_review(
    tx: &impl GenericClient,
    purchase: Uuid,
    reason: &str,
    payment_intent: Option<&str>,
) -> AppResult<()> {
    tx.cached_execute(sql::HOLD_FOR_REVIEW, &[&purchase, &reason, &payment_intent])
        .await?;
    tracing::error!(purchase_id = %purchase, reason, "purchase held for review");
    Ok(())
}

fn unknown(facts: &SessionFacts) -> Effect {
    Effect::UnknownPurchase(format!(
        "session {} names no purchase of ours ({})",
        facts.session_id,
        facts
            .purchase_id
            .map_or_else(|| "no purchase id".to_owned(), |id| id.to_string())
    ))
}

async fn owner_email(tx: &impl GenericClient, user: Uuid) -> AppResult<Option<String>> {
    match tx.cached_query_opt(sql::OWNER_EMAIL, &[&user]).await? {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(None),
    }
}

pub mod sql {
    use crate::billing::purchase_columns;

    crate::db::statements! {
        pub const RECORD_CHECKOUT_SESSION = "UPDATE purchases SET stripe_session_id = $2,
            stripe_payment_intent_id = COALESCE($3, stripe_payment_intent_id)
            WHERE id = $1";
        pub const LOCK_BY_ID = concat!("SELECT ", purchase_columns!(), " FROM purchases WHERE id = $1 FOR UPDATE");
        pub const MARK_PAID = "UPDATE purchases SET status = 'paid', paid_at = now(), review_reason = NULL,
            updated_at = now()
            WHERE id = $1";
        pub const LOCK_BY_PAYMENT_INTENT = concat!("SELECT ", purchase_columns!(), " FROM purchases
            WHERE stripe_payment_intent_id = $1 FOR UPDATE");
        pub const SET_AMOUNT_REFUNDED = "UPDATE purchases SET amount_refunded = $2, updated_at = now() WHERE id = $1";
        pub const SET_CREDITS_REFUNDED = "UPDATE purchases SET credits_refunded = $2, updated_at = now() WHERE id = $1";
        pub const SET_STATUS = "UPDATE purchases SET status = $2, stripe_session_id = COALESCE(stripe_session_id, $3),
            updated_at = now()
            WHERE id = $1";
        pub const LOCK_BY_ID_OR_SESSION = concat!("SELECT ", purchase_columns!(), " FROM purchases
            WHERE id = $1 OR ($1 IS NULL AND stripe_session_id = $2) FOR UPDATE");
        pub const HOLD_FOR_REVIEW = "UPDATE purchases SET status = 'review', review_reason = $2,
            stripe_payment_intent_id = COALESCE($3, stripe_payment_intent_id), updated_at = now()
            WHERE id = $1";
        pub const OWNER_EMAIL = "SELECT email FROM users WHERE id = $1";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refunds_take_back_the_proportional_credits_rounded_down() {
        assert_eq!(refunded_credits(100, 1_000, 1_000), 100);
        assert_eq!(refunded_credits(100, 500, 1_000), 50);
        assert_eq!(refunded_credits(500, 1, 4_500), 0);
        assert_eq!(refunded_credits(500, 4_499, 4_500), 499);
        assert_eq!(refunded_credits(500, 9_999, 4_500), 500);
        assert_eq!(refunded_credits(500, -3, 4_500), 0);
        assert_eq!(refunded_credits(1_000_000, i64::MAX, i64::MAX), 1_000_000);
    }
}
