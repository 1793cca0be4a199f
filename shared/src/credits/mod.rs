//! The credits ledger. [`apply`] is the one function that changes a balance: it appends a
//! ledger row and moves `users.credits` in the caller's transaction, under the user's row
//! lock, and is idempotent on the change's external reference (per tenant).

pub mod holds;

use crate::db::{
    filter::{Filter, Total},
    statements::{Cached, PlannedPerRun},
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::{error::SqlState, Row};
use utoipa::ToSchema;

use crate::{
    email::{self, Email},
    error::{AppError, AppResult},
    settings::Settings,
    tenant::TenantId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditKind {
    Purchase,
    Usage,
    Bonus,
    AdminAdjustment,
    Refund,
}

impl CreditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Usage => "usage",
            Self::Bonus => "bonus",
            Self::AdminAdjustment => "admin_adjustment",
            Self::Refund => "refund",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Purchase,
            Self::Usage,
            Self::Bonus,
            Self::AdminAdjustment,
            Self::Refund,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }

    /// design.md's type of an entry of this kind: a refund (a Stripe refund or a lost dispute)
    /// is a purchase taken back.
    pub fn design_type(self) -> TransactionType {
        match self {
            Self::Purchase | Self::Refund => TransactionType::Purchase,
            Self::Usage => TransactionType::Usage,
            Self::Bonus => TransactionType::Bonus,
            Self::AdminAdjustment => TransactionType::AdminAdjustment,
        }
    }

    /// The ledger types a history filtered on this type shows: a filter on `purchase` also
    /// shows the refunds, which are served as purchases.
    fn filtered_as(self) -> &'static [&'static str] {
        match self {
            Self::Purchase => &["purchase", "refund"],
            Self::Usage => &["usage"],
            Self::Bonus => &["bonus"],
            Self::AdminAdjustment => &["admin_adjustment"],
            Self::Refund => &["refund"],
        }
    }

    /// Purchases and bonuses add, usage and refunds take away; an admin may do either.
    fn allows(self, amount: i64) -> bool {
        match self {
            Self::Purchase | Self::Bonus => amount > 0,
            Self::Usage | Self::Refund => amount < 0,
            Self::AdminAdjustment => amount != 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CreditChange {
    pub tenant: TenantId,
    pub kind: CreditKind,
    /// Signed: negative takes credits away.
    pub amount: i64,
    /// The external event behind the change; applying the same one twice changes nothing.
    pub reference: String,
    pub description: String,
    pub stripe_payment_id: Option<String>,
}

/// The CreditTransaction types of design.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionType {
    Purchase,
    Usage,
    Bonus,
    AdminAdjustment,
}

/// One ledger row, as the API shows it (the design's CreditTransaction).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreditTransaction {
    pub id: String,
    pub user_id: uuid::Uuid,
    /// design.md's type; a refund is a `purchase` with a negative amount (see `ledger_type`).
    #[serde(rename = "type")]
    pub design_type: TransactionType,
    /// The ledger's own type, which also tells a refund from a purchase (what
    /// `GET /billing/history?type=` filters on).
    #[serde(rename = "ledger_type")]
    pub kind: CreditKind,
    /// Signed: negative takes credits away.
    pub amount: i64,
    pub balance_after: i64,
    pub description: String,
    /// Absent when the entry has no Stripe payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub stripe_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The columns `CreditTransaction::try_from` reads.
macro_rules! ledger_columns {
    () => {
        "id, user_id, type, amount, balance_after, description, stripe_payment_id, created_at"
    };
}

impl TryFrom<&Row> for CreditTransaction {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        let kind: &str = row.try_get("type")?;
        let kind = CreditKind::parse(kind)
            .ok_or_else(|| AppError::internal(format!("unknown ledger type {kind}")))?;
        Ok(Self {
            id: row.try_get::<_, i64>("id")?.to_string(),
            user_id: row.try_get("user_id")?,
            design_type: kind.design_type(),
            kind,
            amount: row.try_get("amount")?,
            balance_after: row.try_get("balance_after")?,
            description: row.try_get("description")?,
            stripe_payment_id: row.try_get("stripe_payment_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Applied {
    /// The change was recorded now.
    New(CreditTransaction),
    /// This reference was applied before; nothing changed.
    Duplicate(CreditTransaction),
}

impl Applied {
    pub fn entry(&self) -> &CreditTransaction {
        match self {
            Self::New(entry) | Self::Duplicate(entry) => entry,
        }
    }
}

/// Applies a credit change inside the caller's transaction (commit is the caller's), so a
/// change and its cause (a call, a payment) are stored together or not at all.
pub async fn apply(tx: &impl GenericClient, change: &CreditChange) -> AppResult<Applied> {
    if !change.kind.allows(change.amount) {
        return Err(AppError::validation(
            "amount",
            format!(
                "{} is not a valid amount for {}",
                change.amount,
                change.kind.as_str()
            ),
        ));
    }
    if change.reference.trim().is_empty() {
        return Err(AppError::validation("reference", "must not be empty"));
    }
    let tenant = change.tenant.as_uuid();
    let kind = change.kind.as_str();
    let default_threshold = Settings::default().low_credit_threshold;
    // One statement: the user's row lock (which serializes every change of one user, so
    // balance_after is always exact; `NO KEY UPDATE`, the lock an UPDATE of the balance takes,
    // so that it does not wait on the key-share locks of rows this transaction or a concurrent
    // one inserted for the user, which would deadlock two of them), the entry unless its reference was applied before,
    // and the balance. A duplicate is read back after, outside the hot path.
    let row = tx
        .cached_query_opt(
            sql::APPLY,
            &[
                tenant,
                &kind,
                &change.amount,
                &change.description,
                &change.reference,
                &change.stripe_payment_id,
                &default_threshold,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) {
                AppError::validation("amount", "balance would overflow")
            } else {
                e.into()
            }
        })?
        .ok_or_else(|| AppError::not_found("user"))?;
    if row.try_get::<_, Option<i64>>("id")?.is_none() {
        let existing = tx
            .cached_query_one(sql::ENTRY_BY_REFERENCE, &[tenant, &kind, &change.reference])
            .await?;
        return Ok(Applied::Duplicate(CreditTransaction::try_from(&existing)?));
    }
    let entry = CreditTransaction::try_from(&row)?;
    let threshold: i64 = row.try_get("threshold")?;
    // Once per crossing below the threshold; being back at or above it re-arms the warning
    // (the statement stores `balance_after < threshold` as the warned flag).
    let was_warned: bool = row.try_get("was_warned")?;
    if !was_warned && entry.balance_after < threshold {
        if let Some(recipient) = row.try_get::<_, Option<String>>("email")? {
            let crossing = row.try_get::<_, i64>("id")?;
            let warning = Email::low_credit(
                *tenant,
                &recipient,
                crossing,
                entry.balance_after,
                threshold,
            );
            email::queue(tx, &warning).await?;
        }
    }
    Ok(Applied::New(entry))
}

/// The state the frontend shows next to the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditState {
    Active,
    Low,
    Exhausted,
}

pub fn credit_state(balance: i64, low_threshold: i64) -> CreditState {
    if balance <= 0 {
        CreditState::Exhausted
    } else if balance < low_threshold {
        CreditState::Low
    } else {
        CreditState::Active
    }
}

/// A page of the tenant's ledger, newest first, after the entry `before_id` when given, and how
/// many entries match (counted up to the list bound).
pub async fn history(
    client: &impl PlannedPerRun,
    tenant: TenantId,
    kind: Option<CreditKind>,
    before_id: Option<i64>,
    limit: i64,
) -> AppResult<(Vec<CreditTransaction>, Total)> {
    let entries = ledger_of(tenant, kind);
    let (rows, total) = entries
        .page_by_id_with_total(
            client,
            sql::HISTORY_FROM,
            sql::HISTORY_SELECT,
            before_id,
            limit,
        )
        .await?;
    let entries = rows
        .iter()
        .map(CreditTransaction::try_from)
        .collect::<AppResult<_>>()?;
    Ok((entries, total))
}

/// The tenant's ledger entries, of the types a filter on `kind` shows.
///
/// The types are written into the statement, not passed as a parameter, so each filter is its
/// own cached statement and its generic plan knows its types: a tenant's few purchases are
/// found through the index by type, its many usage entries in id order. Generic in the types,
/// the plan stepped through every newer usage entry to reach the purchases (151 ms at p50 for
/// a tenant of a million calls, in the read bench).
fn ledger_of(tenant: TenantId, kind: Option<CreditKind>) -> Filter {
    let mut entries = Filter::default();
    entries.and("user_id = $", vec![Box::new(*tenant.as_uuid())]);
    if let Some(kind) = kind {
        let types: Vec<String> = kind
            .filtered_as()
            .iter()
            .map(|name| format!("'{name}'"))
            .collect();
        entries.and(&format!("type IN ({})", types.join(", ")), vec![]);
    }
    entries
}

pub mod sql {
    use super::{ledger_of, CreditKind};
    use crate::{db::filter::Filter, tenant::TenantId};
    use uuid::Uuid;

    crate::db::statements! {
        pub const APPLY = concat!("WITH account AS MATERIALIZED (
                SELECT id, credits, low_credit_warned, email,
                    COALESCE((SELECT value::bigint FROM settings WHERE key = 'low_credit_threshold'), $7)
                        AS threshold
                FROM users WHERE id = $1 FOR NO KEY UPDATE),
            entry AS (
                INSERT INTO credit_transactions
                    (user_id, type, amount, balance_after, description, reference, stripe_payment_id)
                SELECT id, $2, $3, credits + $3, $4, $5, $6 FROM account
                ON CONFLICT (user_id, type, reference) DO NOTHING
                RETURNING ", ledger_columns!(), "),
            balance AS (
                UPDATE users SET credits = entry.balance_after,
                    low_credit_warned = entry.balance_after < account.threshold, updated_at = now()
                FROM entry, account WHERE users.id = entry.user_id)
            SELECT entry.*, account.low_credit_warned AS was_warned, account.email, account.threshold
            FROM account LEFT JOIN entry ON true");
        pub const ENTRY_BY_REFERENCE = concat!("SELECT ", ledger_columns!(), " FROM credit_transactions
            WHERE user_id = $1 AND type = $2 AND reference = $3");
        fullest {
            HISTORY_PAGE = || every_filter().page_by_id_statement(HISTORY_SELECT, true),
            HISTORY_TOTAL = || every_filter().total_statement(HISTORY_FROM),
        }
    }

    /// The rows the ledger history counts and pages through.
    pub const HISTORY_FROM: &str = "credit_transactions";
    pub const HISTORY_SELECT: &str =
        concat!("SELECT ", ledger_columns!(), " FROM credit_transactions");

    fn every_filter() -> Filter {
        ledger_of(
            TenantId::from_trusted(Uuid::nil()),
            Some(CreditKind::Purchase),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_check_signs() {
        for kind in [
            CreditKind::Purchase,
            CreditKind::Usage,
            CreditKind::Bonus,
            CreditKind::AdminAdjustment,
            CreditKind::Refund,
        ] {
            assert_eq!(CreditKind::parse(kind.as_str()), Some(kind));
            assert!(!kind.allows(0));
        }
        assert!(CreditKind::Usage.allows(-3) && !CreditKind::Usage.allows(3));
        assert!(CreditKind::Purchase.allows(100) && !CreditKind::Purchase.allows(-1));
        assert!(CreditKind::AdminAdjustment.allows(-5) && CreditKind::AdminAdjustment.allows(5));
        assert_eq!(CreditKind::parse("gift"), None);
    }

    #[test]
    fn states_follow_the_threshold() {
        assert_eq!(credit_state(-2, 5), CreditState::Exhausted);
        assert_eq!(credit_state(0, 5), CreditState::Exhausted);
        assert_eq!(credit_state(4, 5), CreditState::Low);
        assert_eq!(credit_state(5, 5), CreditState::Active);
        assert_eq!(credit_state(5, 10), CreditState::Low);
    }
}
