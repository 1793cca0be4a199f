//! Chargebacks, inside the processor's transaction like every payment event. A dispute takes
//! back the disputed share of the purchase's credits once (`charge.dispute.created` and
//! `charge.dispute.funds_withdrawn` share one ledger reference, so whichever arrives first
//! applies) and flags the tenant for an administrator's review; `charge.dispute.closed` won
//! gives the credits back, lost keeps them taken. A closing event that arrives before the
//! opening one is recorded, so the late opening changes nothing.

use crate::db::statements::Cached;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    payments::{refunded_credits, Effect},
    Purchase, PurchaseStatus,
};
use crate::{
    credits::{self, CreditChange, CreditKind},
    error::AppResult,
    tenant::TenantId,
};

/// The parts of a Stripe Dispute object we act on.
#[derive(Debug, Clone, Default)]
pub struct DisputeFacts {
    pub dispute_id: String,
    pub payment_intent: Option<String>,
    /// Disputed amount, in minor units.
    pub amount: i64,
    pub currency: Option<String>,
    /// Stripe's status: `won`, `lost`, `warning_closed`, `needs_response`, ...
    pub status: String,
}

/// How a closed dispute ended for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The money stays with us (won, or an inquiry closed without a chargeback).
    Kept,
    Lost,
}

fn closing(status: &str) -> Option<Closing> {
    match status {
        // `prevented`: stopped before it became a chargeback (Visa's Rapid Dispute Resolution
        // refunds the buyer instead, and the refund takes its credits back).
        "won" | "warning_closed" | "prevented" => Some(Closing::Kept),
        "lost" => Some(Closing::Lost),
        _ => None,
    }
}

struct Recorded {
    credits_withdrawn: i64,
    status: String,
}

/// `charge.dispute.created` / `charge.dispute.funds_withdrawn`.
pub async fn opened(tx: &impl GenericClient, facts: &DisputeFacts) -> AppResult<Effect> {
    // Created already closed (a prevented dispute): as if its close came first.
    if closing(&facts.status).is_some() {
        return closed(tx, facts).await;
    }
    let Some(purchase) = lock_purchase(tx, facts).await? else {
        return Ok(unknown(facts));
    };
    if let Some(reason) = unusable(&purchase, facts) {
        return Ok(Effect::Review(reason));
    }
    if recorded(tx, &facts.dispute_id).await?.is_some() {
        return Ok(Effect::Unchanged("dispute already recorded".into()));
    }
    let withdrawn = withdraw(tx, &purchase, facts).await?;
    record(tx, &purchase, facts, withdrawn, "open").await?;
    flag(tx, &purchase, facts).await?;
    Ok(Effect::Applied)
}

/// `charge.dispute.closed`.
pub async fn closed(tx: &impl GenericClient, facts: &DisputeFacts) -> AppResult<Effect> {
    let Some(outcome) = closing(&facts.status) else {
        return Ok(Effect::Unchanged(format!(
            "a closed dispute with status {:?}",
            facts.status
        )));
    };
    let Some(purchase) = lock_purchase(tx, facts).await? else {
        return Ok(unknown(facts));
    };
    if let Some(reason) = unusable(&purchase, facts) {
        return Ok(Effect::Review(reason));
    }
    let final_status = match outcome {
        Closing::Kept => "won",
        Closing::Lost => "lost",
    };
    match recorded(tx, &facts.dispute_id).await? {
        Some(dispute) if dispute.status != "open" => Ok(Effect::Unchanged(format!(
            "dispute already {}",
            dispute.status
        ))),
        Some(dispute) => {
            if outcome == Closing::Kept && dispute.credits_withdrawn > 0 {
                credits::apply(
                    tx,
                    &CreditChange {
                        tenant: TenantId::from_trusted(purchase.user_id),
                        kind: CreditKind::Purchase,
                        amount: dispute.credits_withdrawn,
                        reference: format!("dispute-won:{}", facts.dispute_id),
                        description: format!("Dispute won: {}", purchase.package_name),
                        stripe_payment_id: purchase.payment_intent.clone(),
                    },
                )
                .await?;
            }
            tx.cached_execute(sql::SET_STATUS, &[&facts.dispute_id, &final_status])
                .await?;
            Ok(Effect::Applied)
        }
        // Closed before we saw it open: a loss still takes the credits back, a win leaves them.
        None => {
            let withdrawn = match outcome {
                Closing::Lost => withdraw(tx, &purchase, facts).await?,
                Closing::Kept => 0,
            };
            record(tx, &purchase, facts, withdrawn, final_status).await?;
            if outcome == Closing::Lost {
                flag(tx, &purchase, facts).await?;
            }
            Ok(Effect::Applied)
        }
    }
}

/// Takes back the disputed share of the credits not already refunded; returns how many.
async fn withdraw(
    tx: &impl GenericClient,
    purchase: &Purchase,
    facts: &DisputeFacts,
) -> AppResult<i64> {
    let share = refunded_credits(purchase.credits, facts.amount, purchase.amount);
    let credits = share
        .min(purchase.credits - purchase.credits_refunded)
        .max(0);
    if credits > 0 {
        credits::apply(
            tx,
            &CreditChange {
                tenant: TenantId::from_trusted(purchase.user_id),
                kind: CreditKind::Refund,
                amount: -credits,
                reference: format!("dispute:{}", facts.dispute_id),
                description: format!("Payment disputed: {}", purchase.package_name),
                stripe_payment_id: purchase.payment_intent.clone(),
            },
        )
        .await?;
    }
    Ok(credits)
}

async fn record(
    tx: &impl GenericClient,
    purchase: &Purchase,
    facts: &DisputeFacts,
    credits_withdrawn: i64,
    status: &str,
) -> AppResult<()> {
    tx.cached_execute(
        sql::INSERT,
        &[
            &facts.dispute_id,
            &purchase.id,
            &purchase.user_id,
            &facts.amount,
            &credits_withdrawn,
            &status,
        ],
    )
    .await?;
    Ok(())
}

async fn flag(tx: &impl GenericClient, purchase: &Purchase, facts: &DisputeFacts) -> AppResult<()> {
    let reason = format!(
        "payment disputed: dispute {} on purchase {}",
        facts.dispute_id, purchase.id
    );
    tx.cached_execute(sql::SET_REVIEW_REASON, &[&purchase.user_id, &reason])
        .await?;
    tracing::warn!(user_id = %purchase.user_id, dispute = %facts.dispute_id, "tenant flagged for review: payment disputed");
    Ok(())
}

async fn recorded(tx: &impl GenericClient, dispute_id: &str) -> AppResult<Option<Recorded>> {
    let row: Option<Row> = tx
        .cached_query_opt(sql::LOCK_WITHDRAWN, &[&dispute_id])
        .await?;
    row.map(|row| {
        Ok(Recorded {
            credits_withdrawn: row.try_get("credits_withdrawn")?,
            status: row.try_get("status")?,
        })
    })
    .transpose()
}

/// The purchase the disputed payment paid for, locked (its events apply one at a time).
async fn lock_purchase(
    tx: &impl GenericClient,
    facts: &DisputeFacts,
) -> AppResult<Option<Purchase>> {
    let Some(intent) = &facts.payment_intent else {
        return Ok(None);
    };
    tx.cached_query_opt(super::payments::sql::LOCK_BY_PAYMENT_INTENT, &[intent])
        .await?
        .as_ref()
        .map(Purchase::try_from)
        .transpose()
}

/// Why the dispute cannot be settled automatically, if it cannot.
fn unusable(purchase: &Purchase, facts: &DisputeFacts) -> Option<String> {
    if let Some(currency) = &facts.currency {
        if !currency.eq_ignore_ascii_case(&purchase.currency) {
            return Some(format!(
                "dispute in {currency}, the purchase was in {}",
                purchase.currency
            ));
        }
    }
    (purchase.status != PurchaseStatus::Paid).then(|| {
        format!(
            "dispute {} on a purchase that is {}",
            facts.dispute_id,
            purchase.status.as_str()
        )
    })
}

fn unknown(facts: &DisputeFacts) -> Effect {
    Effect::UnknownPurchase(format!(
        "dispute {} names no payment of ours",
        facts.dispute_id
    ))
}

pub mod sql {
    crate::db::statements! {
        pub const SET_STATUS = "UPDATE disputes SET status = $2, updated_at = now() WHERE id = $1";
        pub const INSERT = "INSERT INTO disputes (id, purchase_id, user_id, amount, credits_withdrawn, status)
            VALUES ($1, $2, $3, $4, $5, $6)";
        pub const SET_REVIEW_REASON = "UPDATE users SET review_reason = $2, updated_at = now() WHERE id = $1";
        pub const LOCK_WITHDRAWN = "SELECT credits_withdrawn, status FROM disputes WHERE id = $1 FOR UPDATE";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_statuses_close_a_dispute() {
        assert_eq!(closing("won"), Some(Closing::Kept));
        assert_eq!(closing("warning_closed"), Some(Closing::Kept));
        assert_eq!(closing("lost"), Some(Closing::Lost));
        assert_eq!(closing("needs_response"), None);
        assert_eq!(closing("under_review"), None);
    }
}
