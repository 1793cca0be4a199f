//! Emails to account owners: welcome, purchase receipt, low-credit warning. They are queued in
//! `email_outbox` inside the transaction of their cause (so each is sent once, and never for a
//! change that rolled back) and sent later by [`outbox::send_due`], so SMTP never fails or slows
//! the request or webhook behind them.

pub mod outbox;
mod templates;

use crate::db::statements::Cached;
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::AppResult;

/// What a purchase receipt says: a paid purchase and the balance it left.
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    pub user_id: Uuid,
    pub purchase_id: Uuid,
    pub package_name: &'a str,
    pub credits: i64,
    /// In the currency's smallest unit.
    pub amount: i64,
    pub currency: &'a str,
    pub balance: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Welcome,
    Receipt,
    LowCredit,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::Receipt => "receipt",
            Self::LowCredit => "low_credit",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Welcome, Self::Receipt, Self::LowCredit]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// One email to queue. `dedup_key` names its cause: queuing the same cause again is a no-op.
#[derive(Debug, Clone)]
pub struct Email {
    pub kind: EmailKind,
    pub user_id: Uuid,
    pub recipient: String,
    pub dedup_key: String,
    pub data: Value,
}

impl Email {
    pub fn welcome(user_id: Uuid, recipient: &str, name: Option<&str>, credits: i64) -> Self {
        Self {
            kind: EmailKind::Welcome,
            user_id,
            recipient: recipient.to_owned(),
            dedup_key: format!("welcome:{user_id}"),
            data: json!({ "name": name, "credits": credits }),
        }
    }

    pub fn receipt(recipient: &str, receipt: &Receipt<'_>) -> Self {
        Self {
            kind: EmailKind::Receipt,
            user_id: receipt.user_id,
            recipient: recipient.to_owned(),
            dedup_key: format!("receipt:{}", receipt.purchase_id),
            data: json!({
                "purchase_id": receipt.purchase_id,
                "package_name": receipt.package_name,
                "credits": receipt.credits,
                "amount": receipt.amount,
                "currency": receipt.currency,
                "balance": receipt.balance,
            }),
        }
    }

    /// `crossing` identifies this crossing below the threshold (the ledger entry that caused it).
    pub fn low_credit(
        user_id: Uuid,
        recipient: &str,
        crossing: i64,
        balance: i64,
        threshold: i64,
    ) -> Self {
        Self {
            kind: EmailKind::LowCredit,
            user_id,
            recipient: recipient.to_owned(),
            dedup_key: format!("low_credit:{user_id}:{crossing}"),
            data: json!({ "balance": balance, "threshold": threshold }),
        }
    }
}

/// Queues `email` in the caller's transaction; false when its cause had queued it already.
pub async fn queue(tx: &impl GenericClient, email: &Email) -> AppResult<bool> {
    let inserted = tx
        .cached_execute(
            sql::QUEUE,
            &[
                &email.user_id,
                &email.kind.as_str(),
                &email.dedup_key,
                &email.recipient,
                &email.data,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

pub mod sql {
    crate::db::statements! {
        pub const QUEUE = "INSERT INTO email_outbox (user_id, kind, dedup_key, recipient, data)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedup_key) DO NOTHING";
    }
}
