//! Balance and ledger: /billing/credits, /api/user/credits, /billing/history.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppQuery, ListResponse, PageQuery};
use crate::{
    auth::AuthUser,
    credits::{self, CreditKind, CreditState, CreditTransaction, LOW_CREDIT_THRESHOLD},
    error::{AppError, AppResult, ErrorBody},
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(billing_credits))
        .routes(routes!(user_credits))
        .routes(routes!(history))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credits {
    /// Whole credits; 1 credit = 1 started minute. Negative when usage overran the balance.
    pub credits: i64,
    pub low_credits: bool,
    pub status: CreditState,
    pub low_credit_threshold: i64,
}

impl Credits {
    fn of(balance: i64) -> Self {
        Self {
            credits: balance,
            low_credits: balance < LOW_CREDIT_THRESHOLD,
            status: credits::credit_state(balance),
            low_credit_threshold: LOW_CREDIT_THRESHOLD,
        }
    }
}

#[utoipa::path(get, path = "/billing/credits", tag = "billing",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Credits), (status = 401, body = ErrorBody)))]
async fn billing_credits(auth: AuthUser) -> Json<Credits> {
    Json(Credits::of(auth.user.credits))
}

#[utoipa::path(get, path = "/api/user/credits", tag = "billing",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Credits), (status = 401, body = ErrorBody)))]
async fn user_credits(auth: AuthUser) -> Json<Credits> {
    Json(Credits::of(auth.user.credits))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryFilter {
    /// Only entries of this type: purchase, usage, bonus, admin_adjustment or refund.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[utoipa::path(get, path = "/billing/history", tag = "billing", params(PageQuery, HistoryFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<CreditTransaction>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(page): AppQuery<PageQuery>,
    AppQuery(filter): AppQuery<HistoryFilter>,
) -> AppResult<Json<ListResponse<CreditTransaction>>> {
    let limit = page.limit()?;
    let before: Option<i64> = page.cursor()?;
    let kind = filter
        .kind
        .as_deref()
        .map(|raw| {
            CreditKind::parse(raw).ok_or_else(|| {
                AppError::validation(
                    "type",
                    "must be purchase, usage, bonus, admin_adjustment or refund",
                )
            })
        })
        .transpose()?;
    let client = state.db().get().await?;
    let (entries, total) = credits::history(&client, auth.tenant, kind, before, limit).await?;
    Ok(Json(ListResponse::page(entries, total, limit, |entry| {
        entry.id.parse::<i64>().unwrap_or_default()
    })))
}
