//! A search read in the list's order within a window of the newest rows, and looked up in its
//! trigram index when the window holds too few matches and more rows follow it. A list's page
//! reads the window, then looks up only then ([`Filter::rows_of_page`]); an export's page and a
//! total are one statement each, whose lookup Postgres runs only then.
//!
//! Reading in order costs each row it reads (6.5 µs a call with its contact, in the largest
//! tenant of the 10M bench); a lookup costs each row that holds the fragment, wherever it is.
//! The newest rows [`fit_search_to_rows`](Filter::fit_search_to_rows) samples may hold a
//! fragment that older rows hold rarely or never: read in order without a bound, the next page
//! or the count of such a fragment read the rest of the tenant (8.3 s for a million calls).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio_postgres::{types::ToSql, Row};
use uuid::Uuid;

use super::{
    cursor_condition, page_params_after, search::sampled_first, Filter, Keyset, Reading,
    SEARCH_TOTAL_BOUND,
};
use crate::{
    db::statements::{Cached, PlannedPerRun},
    error::AppResult,
};

/// How many rows a page read in order reads at most for each row it is to find: 50, the one
/// in 50 ([`COMMON_MATCHES`](super::COMMON_MATCHES) of [`SAMPLED_ROWS`](super::SAMPLED_ROWS))
/// that chose to read in order. A page of 20 reads at most 1,000 rows (6.5 ms in the largest
/// tenant's calls), an export's page of 5,000 at most 250,000.
pub const PAGE_WINDOW_PER_ROW: i64 = 50;

/// How many rows a total read in order reads at most for each row it counts to its bound: 15,
/// past the one in 10 ([`COUNTED_MATCHES`](super::COUNTED_MATCHES) of the sampled rows) that
/// chose to count in order. Counting to [`SEARCH_TOTAL_BOUND`] reads at most 15,015 rows
/// (about 100 ms in the largest tenant's calls; unbounded, a fragment one call in 70 holds read
/// 73,455 of them, 417 ms).
pub const COUNT_WINDOW_PER_ROW: i64 = 15;

/// How many rows (SQL) a page of `limit` (SQL) reads in its window.
fn page_window(limit: &str) -> String {
    format!("{limit}::bigint * {PAGE_WINDOW_PER_ROW}")
}

/// Where a fitted search is read: the list's tables and order.
pub(super) struct Window {
    pub(super) from: String,
    pub(super) keyset: Keyset,
}

impl Window {
    pub(super) fn new(from: &str, keyset: &Keyset) -> Self {
        Self {
            from: from.to_owned(),
            keyset: *keyset,
        }
    }

    /// The name the list's rows go by in `from`: the table of the keyset's `id` (`c` of
    /// `c.id`), or `from`'s first table when the id is unqualified.
    fn rows(&self) -> &str {
        match self.keyset.id.split_once('.') {
            Some((table, _)) => table,
            None => self.from.split_whitespace().next().unwrap_or_default(),
        }
    }

    /// The newest `size` (SQL) rows that `others` and `cursor` match, in the list's order, as
    /// a table of the list's rows under their own name: the search's condition reads their
    /// columns as it would the table's. A condition on the rows outside their `LIMIT` is
    /// applied to those rows alone.
    pub(super) fn newest(&self, others: &str, cursor: &str, size: &str) -> String {
        let rows = self.rows();
        format!(
            "(SELECT {rows}.* FROM {} WHERE {others}{cursor} ORDER BY {} LIMIT {size}) {rows}",
            self.from,
            self.keyset.order_by()
        )
    }

    /// That `others` and `cursor` match `size` (SQL) rows or more: the window was full. Read
    /// in the list's order, from its index (unordered, Postgres read the calls' table from its
    /// start: 16 ms for 1,000 of the largest tenant's rows, 0.5 ms in order).
    pub(super) fn holds(&self, others: &str, cursor: &str, size: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM {} WHERE {others}{cursor} ORDER BY {} OFFSET {size} - 1)",
            self.from,
            self.keyset.order_by()
        )
    }
}

impl Filter {
    /// [`Filter::rows_of_page`] of a page read in `window`: the window's statement, from the
    /// statement cache, then the lookup past it when the window held less than a page.
    pub(super) async fn rows_in_window(
        &self,
        db: &impl PlannedPerRun,
        around: impl Fn(&str) -> String,
        (select, window): (&str, &Window),
        (at, id): (&Option<DateTime<Utc>>, &Option<Uuid>),
        limit: i64,
    ) -> AppResult<Vec<Row>> {
        let after_cursor = at.is_some();
        let read = around(&self.window_page_statement(select, window, after_cursor));
        let rows = db
            .cached_query(&read, &self.window_page_params(at, id, &limit))
            .await?;
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit {
            return Ok(rows);
        }
        let past = around(&self.past_window_statement(select, window, after_cursor));
        let params = self.page_params(at, id, &limit);
        let looked_up: Vec<Row> = self.run(db, &past, params).await?.try_collect().await?;
        // None when the window was not full: it read every row after the cursor.
        Ok(if looked_up.is_empty() {
            rows
        } else {
            looked_up
        })
    }

    /// A page of `select` read within `window` after the cursor when `after_cursor`: the first
    /// `limit` matches of the window. It names no parameter of the lookup (tenant and
    /// trigrams), so its cursor and limit are numbered after the pattern
    /// ([`Filter::window_page_params`]).
    pub(super) fn window_page_statement(
        &self,
        select: &str,
        window: &Window,
        after_cursor: bool,
    ) -> String {
        let cursor = cursor_condition(&window.keyset, after_cursor, self.pattern_at);
        let limit = format!("${}", self.pattern_at + if after_cursor { 3 } else { 1 });
        let size = page_window(&limit);
        format!(
            "{select} WHERE {id} IN (SELECT {id} FROM {} WHERE {} LIMIT {limit}) \
             ORDER BY {} LIMIT {limit}",
            window.newest(&self.others_clause(), &cursor, &size),
            self.unindexed_condition(),
            window.keyset.order_by(),
            id = window.keyset.id,
        )
    }

    /// [`Filter::window_page_statement`]'s parameters.
    pub(super) fn window_page_params<'a>(
        &'a self,
        at: &'a Option<DateTime<Utc>>,
        id: &'a Option<Uuid>,
        limit: &'a i64,
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        page_params_after(self.params_before_lookup(), at, id, limit)
    }

    /// The page [`Filter::window_page_statement`] reads when its window was full: the
    /// fragment looked up after the cursor. None when the window was not full (it read every
    /// row after the cursor): Postgres runs the lookup only then (a one-time filter).
    pub(super) fn past_window_statement(
        &self,
        select: &str,
        window: &Window,
        after_cursor: bool,
    ) -> String {
        let cursor = cursor_condition(&window.keyset, after_cursor, self.params.len());
        let limit = self.limit_placeholder(after_cursor);
        let size = page_window(&limit);
        let conditions = format!(
            "{}{cursor} AND {}",
            self.where_reading(Reading::AsAdded),
            window.holds(&self.others_clause(), &cursor, &size)
        );
        let tail = format!(" ORDER BY {} LIMIT {limit}", window.keyset.order_by());
        format!(
            "{select} WHERE {}{tail}",
            self.read_as(Reading::AsAdded, conditions, &tail)
        )
    }

    /// A page's condition read in a window, in one statement (an export's page): its row's key
    /// is one of the first `limit` (SQL) matches of the window after `cursor`; when the window
    /// held fewer and was full, one of the newest `limit` after the cursor that the lookup
    /// finds. Postgres runs the lookup only then (a one-time filter).
    pub(super) fn in_window(&self, window: &Window, cursor: &str, limit: &str) -> String {
        let size = page_window(limit);
        let others = self.others_clause();
        let looked_up = format!(
            "{}{cursor} AND w.matched < {limit} AND {}",
            self.where_reading(Reading::AsAdded),
            window.holds(&others, cursor, &size)
        );
        let tail = format!(" ORDER BY {} LIMIT {limit}", window.keyset.order_by());
        format!(
            "{id} IN (SELECT found.id FROM (SELECT count(*) AS matched, array_agg(m.id) AS ids \
             FROM (SELECT {id} AS id FROM {} WHERE {} LIMIT {limit}) m) w, \
             LATERAL (SELECT unnest(w.ids) AS id UNION ALL {}) found)",
            window.newest(&others, cursor, &size),
            self.unindexed_condition(),
            self.lookup_ids(window, &looked_up, (&tail, false), " UNION ALL "),
            id = window.keyset.id,
        )
    }

    /// A total read in a window: its matches, counted to the bound; when it held fewer and was
    /// full, the lookup's, counted to the bound. Postgres runs the lookup only then.
    pub(super) fn window_total_statement(&self, window: &Window) -> String {
        let cut = SEARCH_TOTAL_BOUND + 1;
        let size = (COUNT_WINDOW_PER_ROW * cut).to_string();
        let others = self.others_clause();
        format!(
            "SELECT CASE WHEN w.matched <= {SEARCH_TOTAL_BOUND} AND {} \
             THEN (SELECT count(*) FROM ({}) looked) ELSE w.matched END \
             FROM (SELECT count(*) AS matched FROM (SELECT 1 FROM {} WHERE {} LIMIT {cut}) m) w",
            window.holds(&others, "", &size),
            self.lookup_ids(
                window,
                &self.where_reading(Reading::AsAdded),
                (&format!(" LIMIT {cut}"), true),
                " UNION "
            ),
            window.newest(&others, "", &size),
            self.unindexed_condition(),
        )
    }

    /// The keys of the rows that `conditions` and the search's lookup match (each alternative
    /// on its own, joined by `union`), each lookup ending in `tail`; with `sample_first`
    /// (`tail` a cut alone), each looked up in its table's sample first where it has one.
    fn lookup_ids(
        &self,
        window: &Window,
        conditions: &str,
        (tail, sample_first): (&str, bool),
        union: &str,
    ) -> String {
        self.lookups(conditions, (tail, sample_first), union)
            .unwrap_or_else(|| {
                let sample = self.search_sample().filter(|_| sample_first);
                format!(
                    "({})",
                    sampled_first(window.keyset.id, &window.from, conditions, sample, tail)
                )
            })
    }
}
