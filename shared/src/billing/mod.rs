//! Credit purchases through Stripe Checkout. A purchase row is written (pending) before Stripe
//! is asked for a session, so no payment can arrive for a purchase we do not know; the credits
//! are granted by the webhook ([`payments`]), never by the browser's return.

pub mod disputes;
pub mod payments;

use crate::db::filter::Total;
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    clients::stripe::{CheckoutError, CheckoutRequest, Stripe},
    db::filter::Keyset,
    error::{AppError, AppResult},
    settings::Settings,
    tenant::TenantId,
    users::User,
    AppState,
};

/// A credit package as the frontend shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub credits: i64,
    /// In the currency's minor unit (cents).
    pub price: i64,
    pub currency: String,
}

pub fn packages(settings: &Settings) -> Vec<Package> {
    settings
        .credit_packages
        .iter()
        .map(|package| Package {
            id: package.id.clone(),
            name: package.name.clone(),
            credits: package.credits,
            price: settings.price_of(package),
            currency: settings.currency.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Waiting for the buyer at Stripe Checkout.
    Pending,
    /// Checkout completed with a delayed payment method; waiting for the money.
    Processing,
    Paid,
    Failed,
    /// The checkout session expired unpaid.
    Expired,
    /// Held for a person: Stripe's answer was unknown or did not match the package.
    Review,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Review => "review",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Processing,
            Self::Paid,
            Self::Failed,
            Self::Expired,
            Self::Review,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Purchase {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    pub package_id: String,
    pub package_name: String,
    pub credits: i64,
    pub amount: i64,
    pub currency: String,
    pub status: PurchaseStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip)]
    pub payment_intent: Option<String>,
    pub amount_refunded: i64,
    pub credits_refunded: i64,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
}

/// The columns `Purchase::try_from` reads, for every statement that returns purchases.
macro_rules! purchase_columns {
    () => {
        "id, user_id, package_id, package_name, credits, amount, currency, status, review_reason, \
         stripe_session_id, stripe_payment_intent_id, amount_refunded, credits_refunded, created_at, paid_at"
    };
}
pub(crate) use purchase_columns;

impl TryFrom<&Row> for Purchase {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        let status: &str = row.try_get("status")?;
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            package_id: row.try_get("package_id")?,
            package_name: row.try_get("package_name")?,
            credits: row.try_get("credits")?,
            amount: row.try_get("amount")?,
            currency: row.try_get("currency")?,
            status: PurchaseStatus::parse(status)
                .ok_or_else(|| AppError::internal(format!("unknown purchase status {status}")))?,
            review_reason: row.try_get("review_reason")?,
            session_id: row.try_get("stripe_session_id")?,
            payment_intent: row.try_get("stripe_payment_intent_id")?,
            amount_refunded: row.try_get("amount_refunded")?,
            credits_refunded: row.try_get("credits_refunded")?,
            created_at: row.try_get("created_at")?,
            paid_at: row.try_get("paid_at")?,
        })
    }
}

/// What the buyer's browser is sent to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checkout {
    pub checkout_url: String,
    pub session_id: String,
    pub purchase_id: Uuid,
}

/// Starts a purchase of `package_id`: records it, then asks Stripe for a Checkout Session.
/// When Stripe's answer stays unknown after one retry the purchase is held for review (a
/// session may exist, and its payment will still be credited); when Stripe refuses, it fails.
pub async fn start_purchase(
    state: &AppState,
    user: &User,
    package_id: &str,
) -> AppResult<Checkout> {
    let settings = state.settings().await?;
    let package = packages(&settings)
        .into_iter()
        .find(|p| p.id == package_id)
        .ok_or_else(|| {
            AppError::validation("package_id", format!("no package {package_id:?}")).with_details(
                serde_json::json!({
                    "field": "package_id",
                    "packages": settings.credit_packages.iter().map(|p| &p.id).collect::<Vec<_>>(),
                }),
            )
        })?;
    let client = state.db().get().await?;
    let purchase: Uuid = client
        .cached_query_one(
            sql::INSERT_PENDING,
            &[
                user.tenant().as_uuid(),
                &package.id,
                &package.name,
                &package.credits,
                &package.price,
                &package.currency,
            ],
        )
        .await?
        .try_get(0)?;
    let secrets = state.secrets().get().await?;
    let config = &state.config().stripe;
    let request = CheckoutRequest {
        purchase_id: purchase,
        tenant_id: *user.tenant().as_uuid(),
        product_name: package.name.clone(),
        amount: package.price,
        currency: package.currency.clone(),
        customer_email: user.email.clone(),
        success_url: config.success_url.clone(),
        cancel_url: config.cancel_url.clone(),
    };
    let result = match Stripe::new(
        state.http().clone(),
        &secrets.stripe_secret_key,
        &config.base_url,
        config.timeout,
    ) {
        Ok(stripe) => stripe.create_checkout_session(&request).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(session) => {
            client
                .cached_execute(sql::RECORD_SESSION, &[&purchase, &session.id, &session.url])
                .await?;
            tracing::info!(purchase_id = %purchase, session_id = %session.id, "checkout session created");
            Ok(Checkout {
                checkout_url: session.url,
                session_id: session.id,
                purchase_id: purchase,
            })
        }
        Err(err) => {
            tracing::error!(purchase_id = %purchase, error = %err, "checkout session not created");
            let (status, reason) = match err {
                CheckoutError::Unknown(_) => (
                    PurchaseStatus::Review,
                    "Stripe's answer was not received; a payment for it is still credited",
                ),
                CheckoutError::Refused { .. } => (
                    PurchaseStatus::Failed,
                    "Stripe refused to start the checkout",
                ),
                CheckoutError::Config(_) => (
                    PurchaseStatus::Failed,
                    "payments are not configured correctly",
                ),
            };
            client
                .cached_execute(
                    sql::MARK_CHECKOUT_FAILED,
                    &[&purchase, &status.as_str(), &reason],
                )
                .await?;
            Err(checkout_failed(&err, purchase, status))
        }
    }
}

/// What the buyer is told: our purchase and its state, Stripe's status and code; Stripe's own
/// message (which may name our key) stays in the log.
fn checkout_failed(err: &CheckoutError, purchase: Uuid, status: PurchaseStatus) -> AppError {
    let details = serde_json::json!({
        "purchase_id": purchase,
        "purchase_status": status.as_str(),
        "stripe_status": match err { CheckoutError::Refused { status, .. } => Some(*status), _ => None },
        "stripe_code": match err { CheckoutError::Refused { code, .. } => code.clone(), _ => None },
    });
    let error = match err {
        CheckoutError::Unknown(_) => AppError::upstream(
            "Stripe could not be reached; the purchase is held for review and nothing was charged twice",
        ),
        CheckoutError::Refused { .. } => {
            AppError::upstream("Stripe refused to start the checkout; nothing was charged")
        }
        CheckoutError::Config(_) => {
            AppError::misconfigured("payments are not configured correctly; nothing was charged")
        }
    };
    error.with_details(details)
}

/// The position of a purchase in the newest-first order.
pub type PurchaseCursor = (DateTime<Utc>, Uuid);

const NEWEST: Keyset = Keyset::CREATED;

/// A page of the tenant's purchases, newest first, and how many there are.
pub async fn list(
    client: &impl PlannedPerRun,
    tenant: TenantId,
    limit: i64,
    after: Option<PurchaseCursor>,
) -> AppResult<(Vec<Purchase>, Total)> {
    let of_tenant = sql::of_tenant(tenant);
    let (rows, total) = of_tenant
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
        .map(Purchase::try_from)
        .collect::<AppResult<_>>()?;
    Ok((purchases, total))
}

/// One of the tenant's purchases (another tenant's id is simply not found).
pub async fn find(client: &impl GenericClient, tenant: TenantId, id: Uuid) -> AppResult<Purchase> {
    client
        .cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .as_ref()
        .map(Purchase::try_from)
        .transpose()?
        .ok_or_else(|| AppError::not_found("purchase"))
}

pub mod sql {
    use uuid::Uuid;

    use super::NEWEST;
    use crate::{db::filter::Filter, tenant::TenantId};

    pub const LIST_FROM: &str = "purchases";
    pub const LIST_SELECT: &str = concat!("SELECT ", purchase_columns!(), " FROM purchases");

    pub(super) fn of_tenant(tenant: TenantId) -> Filter {
        let mut filter = Filter::default();
        filter.and("user_id = $", vec![Box::new(*tenant.as_uuid())]);
        filter
    }

    crate::db::statements! {
        pub const INSERT_PENDING = "INSERT INTO purchases (user_id, package_id, package_name, credits, amount, currency)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        pub const RECORD_SESSION = "UPDATE purchases SET stripe_session_id = $2, checkout_url = $3, updated_at = now()
            WHERE id = $1";
        pub const MARK_CHECKOUT_FAILED = "UPDATE purchases SET status = $2, review_reason = $3, updated_at = now()
            WHERE id = $1 AND status = 'pending'";
        pub const ONE_OF_TENANT = concat!("SELECT ", purchase_columns!(), " FROM purchases WHERE id = $1 AND user_id = $2");
        fullest {
            LIST_TOTAL = || of_tenant(TenantId::from_trusted(Uuid::nil())).total_statement(LIST_FROM),
            LIST_PAGE = || of_tenant(TenantId::from_trusted(Uuid::nil())).page_statement(LIST_SELECT, &NEWEST, true),
        }
    }
}
