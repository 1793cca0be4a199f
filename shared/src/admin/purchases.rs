//! Purchases across tenants, for the admin: the ones held for review, and the decision on one.

use crate::db::filter::Total;
use crate::db::statements::PlannedPerRun;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Actor, Entry};
use crate::{
    billing::{payments, Purchase, PurchaseStatus},
    db::filter::{Filter, Keyset},
    error::AppResult,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminPurchase {
    pub user_id: Uuid,
    pub owner_email: Option<String>,
    #[serde(flatten)]
    pub purchase: Purchase,
}

pub mod sql {
    use super::{matching, NEWEST};
    use crate::billing::{purchase_columns, PurchaseStatus};

    /// The rows the purchase list counts and pages through.
    pub const LIST_FROM: &str = "purchases";
    pub const LIST_SELECT: &str = concat!(
        "SELECT ",
        purchase_columns!(),
        ", (SELECT email FROM users u WHERE u.id = p.user_id) AS owner_email FROM purchases p"
    );

    crate::db::statements! {
        fullest {
            LIST_TOTAL = || matching(Some(PurchaseStatus::Review)).total_statement(LIST_FROM),
            LIST_PAGE = || {
                matching(Some(PurchaseStatus::Review)).page_statement(LIST_SELECT, &NEWEST, true)
            },
        }
    }
}

const NEWEST: Keyset = Keyset::CREATED;

/// Newest first, optionally only those with `status`; the cursor is (created_at, id).
pub async fn list(
    client: &impl PlannedPerRun,
    status: Option<PurchaseStatus>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<(Vec<AdminPurchase>, Total)> {
    let matching = matching(status);
    let (rows, total) = matching
        .page_with_total(
            client,
            sql::LIST_FROM,
            sql::LIST_SELECT,
            &NEWEST,
            after,
            limit,
        )
        .await?;
    let purchases = rows
        .iter()
        .map(|row| {
            let purchase = Purchase::try_from(row)?;
            Ok(AdminPurchase {
                user_id: purchase.user_id,
                owner_email: row.try_get("owner_email")?,
                purchase,
            })
        })
        .collect::<AppResult<_>>()?;
    Ok((purchases, total))
}

fn matching(status: Option<PurchaseStatus>) -> Filter {
    let mut matching = Filter::default();
    matching.and_some("status = $", status.map(PurchaseStatus::as_str));
    matching
}

/// Pays a purchase held for review after the admin checked the payment at Stripe.
pub async fn approve(
    tx: &impl GenericClient,
    actor: &Actor,
    purchase: Uuid,
    reason: &str,
) -> AppResult<Purchase> {
    let paid = payments::approve_review(tx, purchase).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "purchase.approved",
            target_type: "purchase",
            target_id: purchase.to_string(),
            details: json!({
                "user_id": paid.user_id, "credits": paid.credits, "amount": paid.amount,
                "currency": paid.currency, "reason": reason,
            }),
        },
    )
    .await?;
    Ok(paid)
}
