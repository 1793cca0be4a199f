//! Purchases across tenants, for the admin: the ones held for review, and the decision on one.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Actor, Entry};
use crate::{
    billing::{payments, Purchase, PurchaseStatus, PURCHASE_COLUMNS},
    error::AppResult,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminPurchase {
    pub user_id: Uuid,
    pub owner_email: Option<String>,
    #[serde(flatten)]
    pub purchase: Purchase,
}

/// Newest first, optionally only those with `status`; the cursor is (created_at, id).
pub async fn list(
    client: &impl GenericClient,
    status: Option<PurchaseStatus>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<(Vec<AdminPurchase>, i64)> {
    let status = status.map(PurchaseStatus::as_str);
    let (after_at, after_id) = after.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {PURCHASE_COLUMNS}, (SELECT email FROM users u WHERE u.id = p.user_id) AS owner_email
                 FROM purchases p WHERE ($1::text IS NULL OR status = $1)
                   AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            &[&status, &after_at, &after_id, &limit],
        )
        .await?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM purchases WHERE $1::text IS NULL OR status = $1",
            &[&status],
        )
        .await?
        .get(0);
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
