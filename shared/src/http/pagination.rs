//! The list shape every list endpoint answers, and opaque keyset cursors.

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppQuery;
use crate::{
    db::filter::Total,
    error::{AppError, AppResult},
};

pub const DEFAULT_LIMIT: i64 = 20;
/// A page holds at most what a list's statement reads (`Filter::page`).
pub const MAX_LIMIT: i64 = crate::db::filter::MOST_ROWS;

#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T: ToSchema> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// Rows matching the filters, over all pages, counted up to 10,000 (with a `search`, up to
    /// 1,000): when more match, `total` is that bound and `total_exact` false (show the bound
    /// and a plus, "10,000+" or "1,000+"; `next_cursor` still pages through every row).
    pub total: i64,
    pub limit: i64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// False when more than `total` rows match.
    pub total_exact: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> AppResult<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(AppError::validation(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    pub fn cursor<T: DeserializeOwned>(&self) -> AppResult<Option<T>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// A list request's `?limit=&cursor=`, checked: the page size, and where the previous page
/// ended (a cursor of type `C` this API issued).
#[derive(Debug, Clone, Copy)]
pub struct Page<C> {
    pub limit: i64,
    pub after: Option<C>,
}

impl<S: Send + Sync, C: DeserializeOwned> FromRequestParts<S> for Page<C> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let AppQuery(query) = AppQuery::<PageQuery>::from_request_parts(parts, state).await?;
        Ok(Self {
            limit: query.limit()?,
            after: query.cursor()?,
        })
    }
}

pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

pub fn decode_cursor<T: DeserializeOwned>(raw: &str) -> AppResult<T> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        // Cursors hold only times this API wrote; one Postgres cannot store was forged.
        .filter(|value| !crate::time::holds_out_of_range_time(value))
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| {
            AppError::bad_request("invalid_cursor", "the cursor is not one this API issued")
        })
}

impl<T: ToSchema> ListResponse<T> {
    /// Builds a page; `position` gives the cursor of the last row when the page is full.
    pub fn page<P: Serialize>(
        data: Vec<T>,
        total: impl Into<Total>,
        limit: i64,
        position: impl Fn(&T) -> P,
    ) -> Self {
        let next_cursor = if i64::try_from(data.len()).unwrap_or(i64::MAX) >= limit {
            data.last().map(|last| encode_cursor(&position(last)))
        } else {
            None
        };
        let total = total.into();
        Self {
            data,
            pagination: Pagination {
                total: total.count,
                limit,
                next_cursor,
                total_exact: total.exact,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let raw = encode_cursor(&(42_i64, "x"));
        assert_eq!(
            decode_cursor::<(i64, String)>(&raw).expect("ok"),
            (42, "x".to_owned())
        );
        for bad in ["", "!!!", "bm90IGpzb24"] {
            assert_eq!(
                decode_cursor::<(i64, String)>(bad).unwrap_err().code,
                "invalid_cursor"
            );
        }
    }

    #[test]
    fn limits_are_bounded() {
        let q = |limit| PageQuery {
            limit,
            cursor: None,
        };
        assert_eq!(q(None).limit().expect("default"), DEFAULT_LIMIT);
        assert_eq!(q(Some(100)).limit().expect("max"), 100);
        assert!(q(Some(0)).limit().is_err());
        assert!(q(Some(101)).limit().is_err());
    }
}
