//! A WHERE clause assembled from the filters a request actually uses, so each list query is a
//! plain statement Postgres can plan for its indexes (no `$n IS NULL OR ...` catch-alls).

use crate::db::{
    statements::{query_planned_for_values, Cached, PlannedPerRun},
    Transaction,
};
use chrono::{DateTime, Utc};
use futures::{future::try_join, Future, TryStreamExt};
use tokio_postgres::{types::ToSql, Row, RowStream};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

mod search;
mod trigrams;
mod window;
pub use search::{
    searched_text, Joined, Search, Searched, COMMON_MATCHES, COUNTED_MATCHES, MAX_SEARCH_CHARS,
    SAMPLED_ROWS, SHORT_LIST_ROWS,
};
use search::{Alternatives, Fitted, Reading};
pub use window::{COUNT_WINDOW_PER_ROW, PAGE_WINDOW_PER_ROW};

/// A newest-first order on a (time, id) pair of expressions, the shape of every list's
/// keyset cursor.
#[derive(Clone, Copy)]
pub struct Keyset {
    pub time: &'static str,
    pub id: &'static str,
}

impl Keyset {
    /// Newest first by a table's own `created_at` and `id`, in a statement without aliases.
    pub const CREATED: Keyset = Keyset {
        time: "created_at",
        id: "id",
    };

    pub fn order_by(&self) -> String {
        format!("{} DESC, {} DESC", self.time, self.id)
    }
}

/// The most rows a page holds ([`Filter::page`]): a list's `?limit=` at most, a profile's
/// timeline.
pub const MOST_ROWS: i64 = 100;

/// How many matching rows a list counts at most for its `pagination.total` (a search, at most
/// [`SEARCH_TOTAL_BOUND`]): counting every one of a tenant's million calls on each page costs
/// more than the page (tens of ms), while past this many the figure only says "more than a
/// few hundred pages".
pub const TOTAL_BOUND: i64 = 10_000;

/// How many rows a search counts at most: past it, the figure says "narrow the search", not
/// "page through it". Counting a fragment that many rows hold reads rows in proportion: a
/// third of a tenant's 300,000 contacts (`acme`) took 87 ms to count to [`TOTAL_BOUND`], 9 ms
/// to this bound.
pub const SEARCH_TOTAL_BOUND: i64 = 1_000;

/// A list's total: exact up to its bound ([`TOTAL_BOUND`], a search's [`SEARCH_TOTAL_BOUND`])
/// of matching rows; past it, the bound, flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: i64,
    pub exact: bool,
}

impl Total {
    /// From a count that stopped past `bound`.
    pub fn bounded_by(counted: i64, bound: i64) -> Self {
        Self {
            count: counted.min(bound),
            exact: counted <= bound,
        }
    }
}

/// A count made in full (lists whose rows are few by nature).
impl From<i64> for Total {
    fn from(count: i64) -> Self {
        Self { count, exact: true }
    }
}

#[derive(Default)]
pub struct Filter {
    conditions: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
    /// A search: planned for its own pattern at every run ([`PlannedPerRun`]) but a page
    /// read in the list's order ([`Filter::rows_of_page`]), and counted to
    /// [`SEARCH_TOTAL_BOUND`].
    searching: bool,
    /// A search over one table's columns: its place in `conditions`.
    search_at: Option<usize>,
    /// That search's rows in its table's sample (V0036), a total's first lookup.
    search_sample: Option<String>,
    /// A search's pattern: its parameter's number (the conditions before the search have
    /// lower ones, its trigram lookup's tenant and trigrams the two after it).
    pattern_at: usize,
    /// A search over more than one table's columns ([`Filter::and_containing_any`]).
    alternatives: Option<Alternatives>,
    /// The search as one condition no trigram index serves, as it is read in the list's order.
    unindexed: Option<String>,
    /// Where and how the search is read, once [`Filter::fit_search_to_rows`] has sampled the
    /// newest rows.
    fitted: Option<Fitted>,
}

impl Filter {
    /// Adds `condition`, where each `$` stands for the next parameter of `values`.
    pub fn and(&mut self, condition: &str, values: Vec<Box<dyn ToSql + Sync + Send>>) -> &mut Self {
        let mut text = String::with_capacity(condition.len() + 4);
        let mut values = values.into_iter();
        for c in condition.chars() {
            if c == '$' {
                let value = values.next().expect("a value for every placeholder");
                self.params.push(value);
                text.push_str(&format!("${}", self.params.len()));
            } else {
                text.push(c);
            }
        }
        self.conditions.push(text);
        self
    }

    /// Adds `condition` with one parameter when `value` is present.
    pub fn and_some<T: ToSql + Sync + Send + 'static>(
        &mut self,
        condition: &str,
        value: Option<T>,
    ) -> &mut Self {
        if let Some(value) = value {
            self.and(condition, vec![Box::new(value)]);
        }
        self
    }

    /// The conditions as a page reads them.
    pub fn where_clause(&self) -> String {
        self.where_reading(self.page_reading())
    }

    /// The conditions, the search's read in order when `reading` is [`Reading::InOrder`].
    fn where_reading(&self, reading: Reading) -> String {
        let mut conditions: Vec<&str> = self.conditions.iter().map(String::as_str).collect();
        if let (Reading::InOrder, Some(unindexed)) = (reading, &self.unindexed) {
            match self.search_at {
                Some(at) => conditions[at] = unindexed,
                None => conditions.push(unindexed),
            }
        }
        all_of(&conditions)
    }

    /// The parameters so far plus `extra` (numbered after them, e.g. a LIMIT).
    pub fn params_with<'a>(
        &'a self,
        extra: &'a [&'a (dyn ToSql + Sync)],
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .chain(extra.iter().copied())
            .collect()
    }

    /// The statement [`Filter::count`] runs: how many rows of `from` match. Counted in full,
    /// a fragment with trigrams is looked up: read in order, every row of the tenant is read.
    pub fn count_statement(&self, from: &str) -> String {
        let reading = match self.count_reading() {
            Reading::Windowed => Reading::AsAdded,
            reading => reading,
        };
        let conditions = self.where_reading(reading);
        match self.lookups_of(from, &conditions, ("", false), " UNION ") {
            Some(lookups) if reading == Reading::AsAdded => {
                format!("SELECT count(*) FROM ({lookups}) matched")
            }
            _ => format!("SELECT count(*) FROM {from} WHERE {conditions}"),
        }
    }

    /// How many rows of `from` match, all counted (an export's progress; a list answers
    /// [`Filter::total`]).
    pub async fn count(&self, db: &impl PlannedPerRun, from: &str) -> AppResult<i64> {
        let row = self
            .one_row(db, &self.count_statement(from), self.params_with(&[]))
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The statement [`Filter::total`] runs: [`Filter::count_statement`] stopping past
    /// [`Filter::total_bound`] rows.
    pub fn total_statement(&self, from: &str) -> String {
        let reading = self.count_reading();
        if let (Reading::Windowed, Some(fitted)) = (reading, &self.fitted) {
            debug_assert!(
                from.starts_with(&fitted.window.from),
                "a total of the fitted tables (and any the lookups alone join)"
            );
            return self.window_total_statement(&fitted.window);
        }
        let cut = format!(" LIMIT {}", self.total_bound() + 1);
        let conditions = self.where_reading(reading);
        match self.lookups_of(from, &conditions, (&cut, true), " UNION ") {
            // Past the bound in one lookup is past it in all; under it in each, the union's
            // distinct rows are the count.
            Some(lookups) if reading == Reading::AsAdded => {
                format!("SELECT count(*) FROM ({lookups}) bounded")
            }
            _ => self.one_table_total(from, &conditions, reading, &cut),
        }
    }

    /// ` ORDER BY` the list's order, for a search read in it ([`Filter::fit_search_to_rows`]):
    /// unordered, Postgres may read the tenant's rows in the table's order, where a common
    /// fragment's first thousand matches are spread through all of them.
    fn read_in_order(&self, reading: Reading) -> String {
        match (reading, &self.fitted) {
            (Reading::InOrder, Some(fitted)) => {
                format!(" ORDER BY {}", fitted.window.keyset.order_by())
            }
            _ => String::new(),
        }
    }

    /// How many matching rows [`Filter::total`] counts at most.
    pub fn total_bound(&self) -> i64 {
        if self.searching {
            SEARCH_TOTAL_BOUND
        } else {
            TOTAL_BOUND
        }
    }

    /// A list's total of the rows of `from` that match.
    pub async fn total(&self, db: &impl PlannedPerRun, from: &str) -> AppResult<Total> {
        let row = self
            .one_row(db, &self.total_statement(from), self.params_with(&[]))
            .await?;
        Ok(Total::bounded_by(row.try_get(0)?, self.total_bound()))
    }

    /// [`Filter::page`] of `select` and [`Filter::total`] of `from`, as
    /// [`Filter::rows_with_total`] sends them.
    pub async fn page_with_total(
        &self,
        db: &impl PlannedPerRun,
        from: &str,
        select: &str,
        keyset: &Keyset,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> AppResult<(Vec<Row>, Total)> {
        self.rows_with_total(
            after.is_none(),
            limit,
            self.page(db, select, keyset, after, limit),
            self.total(db, from),
        )
        .await
    }

    /// [`Filter::page_by_id`] of `select` and [`Filter::total`] of `from`, as
    /// [`Filter::rows_with_total`] sends them.
    pub async fn page_by_id_with_total(
        &self,
        db: &impl PlannedPerRun,
        from: &str,
        select: &str,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<(Vec<Row>, Total)> {
        self.rows_with_total(
            before.is_none(),
            limit,
            self.page_by_id(db, select, before, limit),
            self.total(db, from),
        )
        .await
    }

    /// A page's `rows` (the first page when `first_page`, of at most `limit`) and the list's
    /// `total` of this filter's rows: sent together, one round trip, not two. Except a search's
    /// first page: its total is counted only once the page comes back full. A search that
    /// matches fewer rows than a page has its total in hand, and its count would repeat the
    /// page's index lookups (as long again as the page, for a rare fragment in a large tenant).
    pub async fn rows_with_total(
        &self,
        first_page: bool,
        limit: i64,
        rows: impl Future<Output = AppResult<Vec<Row>>>,
        total: impl Future<Output = AppResult<Total>>,
    ) -> AppResult<(Vec<Row>, Total)> {
        if self.searching && first_page {
            let rows = rows.await?;
            let found = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            if found < limit {
                return Ok((rows, Total::from(found)));
            }
            return Ok((rows, total.await?));
        }
        let (total, rows) = try_join(total, rows).await?;
        Ok((rows, total))
    }

    /// The statement [`Filter::page`] runs, with the cursor condition when `after_cursor`: the
    /// matching rows in `keyset` order cut at [`MOST_ROWS`], then at the request's limit.
    ///
    /// Cut at the request's limit alone (`LIMIT $n`), the statement was planned again at every
    /// run, 0.15–0.7 ms each time: Postgres keeps a prepared statement's generic plan only when
    /// it does not look costlier than the custom plans, and a generic plan must assume that
    /// `LIMIT $n` keeps a tenth of the matching rows. Under a constant cut, it settles on the
    /// generic plan after five runs. The outer limit still stops the scan after the page's
    /// rows, and a subquery scan keeps their order. A search is planned at every run anyway,
    /// for its limit too, so it is cut at the request's limit alone.
    pub fn page_statement(&self, select: &str, keyset: &Keyset, after_cursor: bool) -> String {
        self.cut_to_page(self.limit_placeholder(after_cursor), |limit| {
            self.ordered_statement(select, keyset, after_cursor, limit)
        })
    }

    /// The statement [`Filter::page_by_id`] runs: the matching rows of `select` newest first by
    /// their integer `id`, before the cursor's when `before_cursor`, cut as
    /// [`Filter::page_statement`] cuts a page.
    pub fn page_by_id_statement(&self, select: &str, before_cursor: bool) -> String {
        let mut conditions = self.where_clause();
        if before_cursor {
            conditions.push_str(&format!(" AND id < {}", self.next_placeholder(0)));
        }
        let limit = self.next_placeholder(usize::from(before_cursor));
        self.cut_to_page(limit, |limit| {
            format!("{select} WHERE {conditions} ORDER BY id DESC LIMIT {limit}")
        })
    }

    /// `ordered(limit)` cut at the request's `limit` placeholder: under the constant
    /// [`MOST_ROWS`] first, but for a search ([`Filter::page_statement`] says why).
    fn cut_to_page(&self, limit: String, ordered: impl Fn(&str) -> String) -> String {
        if self.searching {
            return ordered(&limit);
        }
        format!(
            "SELECT * FROM ({}) page LIMIT {limit}",
            ordered(&MOST_ROWS.to_string())
        )
    }

    /// `select`'s matching rows in `keyset` order, after the cursor when `after_cursor`, cut
    /// at `limit` (SQL). With alternatives, the rows are those of their lookups, each cut at
    /// `limit` in the same order.
    fn ordered_statement(
        &self,
        select: &str,
        keyset: &Keyset,
        after_cursor: bool,
        limit: &str,
    ) -> String {
        let cursor = cursor_condition(keyset, after_cursor, self.params.len());
        let tail = format!(" ORDER BY {} LIMIT {limit}", keyset.order_by());
        let reading = self.page_reading();
        let conditions = match (reading, &self.fitted) {
            (Reading::Windowed, Some(fitted)) => {
                debug_assert_eq!(keyset.order_by(), fitted.window.keyset.order_by());
                self.in_window(&fitted.window, &cursor, limit)
            }
            _ => self.read_as(
                reading,
                format!("{}{cursor}", self.where_reading(reading)),
                &tail,
            ),
        };
        format!("{select} WHERE {conditions}{tail}")
    }

    /// A page's `conditions` as `reading` reads them: with alternatives looked up
    /// ([`Reading::AsAdded`]), the lookups under them, each cut by `tail`.
    fn read_as(&self, reading: Reading, conditions: String, tail: &str) -> String {
        match self.looked_up(&conditions, tail) {
            Some(looked_up) if reading == Reading::AsAdded => looked_up,
            _ => conditions,
        }
    }

    fn limit_placeholder(&self, after_cursor: bool) -> String {
        self.next_placeholder(if after_cursor { 2 } else { 0 })
    }

    /// Up to `limit` (at most [`MOST_ROWS`]) matching rows of `select` (`SELECT ... FROM
    /// ...`) in `keyset` order, after the cursor position `after` when there is one.
    pub async fn page(
        &self,
        db: &impl PlannedPerRun,
        select: &str,
        keyset: &Keyset,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> AppResult<Vec<Row>> {
        self.rows_of_page(db, str::to_owned, (select, keyset), after, limit)
            .await
    }

    /// [`Filter::page`]'s rows, each statement it runs wrapped by `around`: a statement around
    /// a page that keeps its parameters (a lookup joined to each row of the page).
    ///
    /// A page read in order runs from the connection's statement cache, where Postgres keeps
    /// one plan for it after five runs: planning it again cost more than its run (the largest
    /// tenant's page of `globex 1`: 1.5 ms planning, 1.0 ms run). A kept plan is made for any
    /// tenant, and it reads in the list's order whatever the fragment only because the page's
    /// cut is a parameter, of which Postgres assumes that it keeps a tenth of the rows. Cut
    /// by a constant larger than an average tenant's rows (a window's total: 15,015), the kept
    /// plan collected and sorted the largest tenant's million calls (1.7 s), so a total and
    /// the sample stay planned per run. Within a window, only the window is read so; when it
    /// held less than a page and was full, the page is then looked up, planned for the
    /// fragment.
    pub async fn rows_of_page(
        &self,
        db: &impl PlannedPerRun,
        around: impl Fn(&str) -> String,
        (select, keyset): (&str, &Keyset),
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> AppResult<Vec<Row>> {
        page_fits(limit)?;
        let after_cursor = after.is_some();
        let (at, id) = after.unzip();
        let reading = self.page_reading();
        if let (Reading::Windowed, Some(fitted)) = (reading, &self.fitted) {
            debug_assert_eq!(keyset.order_by(), fitted.window.keyset.order_by());
            return self
                .rows_in_window(db, around, (select, &fitted.window), (&at, &id), limit)
                .await;
        }
        let statement = around(&self.page_statement(select, keyset, after_cursor));
        let params = self.page_params(&at, &id, &limit);
        if reading == Reading::InOrder {
            return Ok(db.cached_query(&statement, &params).await?);
        }
        Ok(self
            .run(db, &statement, params)
            .await?
            .try_collect()
            .await?)
    }

    /// Up to `limit` (at most [`MOST_ROWS`]) matching rows of `select` (`SELECT ... FROM
    /// ...`) newest first by their integer `id`, before the row `before` when given: the
    /// pages of lists whose cursor is an id (the ledger, the audit log).
    pub async fn page_by_id(
        &self,
        db: &impl PlannedPerRun,
        select: &str,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<Row>> {
        page_fits(limit)?;
        let statement = self.page_by_id_statement(select, before.is_some());
        let mut params = self.params_with(&[]);
        if let Some(before) = &before {
            params.push(before);
        }
        params.push(&limit);
        Ok(self
            .run(db, &statement, params)
            .await?
            .try_collect()
            .await?)
    }

    /// Up to `limit` matching rows, any number, as Postgres sends them: [`Filter::page`] for
    /// pages too big to collect (an export's), planned for this run without parallel workers,
    /// in `transaction` (the setting lasts as long as it).
    ///
    /// As a cached statement, an export's page of 5,000 calls had a generic plan that scanned
    /// the tenant's index in parallel under a Gather Merge, whose workers pass every row to
    /// the leader: 35 ms in Postgres against 22 ms serially, and 9.9–10.9 s of an export job's
    /// time for a million calls against 7.4–8.2 s. A cursor is never run in parallel either,
    /// but a `FETCH` collects its rows before it sends the first, so the CSV was no longer
    /// written while the page was read (9.4 s).
    pub async fn page_stream(
        &self,
        transaction: &Transaction<'_>,
        select: &str,
        keyset: &Keyset,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> AppResult<RowStream> {
        let after_cursor = after.is_some();
        let statement = self.ordered_statement(
            select,
            keyset,
            after_cursor,
            &self.limit_placeholder(after_cursor),
        );
        let (at, id) = after.unzip();
        // Sent together: the page follows the setting in the same round trip.
        let (_, rows) = try_join(
            transaction.batch_execute(super::sql::SERIAL_PLANS),
            query_planned_for_values(transaction, &statement, self.page_params(&at, &id, &limit)),
        )
        .await?;
        Ok(rows)
    }

    /// Runs `statement` of this filter: from the connection's statement cache, or planned for
    /// its values when it searches.
    async fn run(
        &self,
        db: &impl PlannedPerRun,
        statement: &str,
        params: Vec<&(dyn ToSql + Sync)>,
    ) -> AppResult<RowStream> {
        Ok(if self.searching {
            query_planned_for_values(db, statement, params).await?
        } else {
            db.query_raw(&db.prepare_cached(statement).await?, params)
                .await?
        })
    }

    /// The one row `statement` answers (a count).
    async fn one_row(
        &self,
        db: &impl PlannedPerRun,
        statement: &str,
        params: Vec<&(dyn ToSql + Sync)>,
    ) -> AppResult<Row> {
        let rows: Vec<Row> = self.run(db, statement, params).await?.try_collect().await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| AppError::internal(format!("no row from {statement}")))
    }

    fn page_params<'a>(
        &'a self,
        at: &'a Option<DateTime<Utc>>,
        id: &'a Option<Uuid>,
        limit: &'a i64,
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        page_params_after(self.params_with(&[]), at, id, limit)
    }

    /// The placeholder the next extra parameter gets.
    pub fn next_placeholder(&self, offset: usize) -> String {
        format!("${}", self.params.len() + offset + 1)
    }
}

/// `params`, then the cursor's time and id when there is one, then `limit`.
fn page_params_after<'a>(
    mut params: Vec<&'a (dyn ToSql + Sync)>,
    at: &'a Option<DateTime<Utc>>,
    id: &'a Option<Uuid>,
    limit: &'a i64,
) -> Vec<&'a (dyn ToSql + Sync)> {
    if let (Some(at), Some(id)) = (at, id) {
        params.extend([at as &(dyn ToSql + Sync), id]);
    }
    params.push(limit);
    params
}

/// When `after_cursor`, that a row comes after the cursor in `keyset` order, the cursor's
/// time and id being the parameters after the first `before`.
fn cursor_condition(keyset: &Keyset, after_cursor: bool, before: usize) -> String {
    if !after_cursor {
        return String::new();
    }
    format!(
        " AND ({}, {}) < (${}, ${})",
        keyset.time,
        keyset.id,
        before + 1,
        before + 2
    )
}

/// `conditions` joined by `AND`; `TRUE` when there are none.
fn all_of(conditions: &[&str]) -> String {
    if conditions.is_empty() {
        "TRUE".to_owned()
    } else {
        conditions.join(" AND ")
    }
}

/// A page's size is checked where its rows are collected: a bigger one is a bug of the caller's.
fn page_fits(limit: i64) -> AppResult<()> {
    if limit > MOST_ROWS {
        return Err(AppError::internal(format!(
            "a page of {limit} rows, over {MOST_ROWS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::search::{highest_placeholder, like_pattern};
    use super::*;
    use crate::tenant::TenantId;

    #[test]
    fn a_search_looks_in_its_columns_joined_and_blanks_add_nothing() {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(1_i32)])
            .and_containing(&["name", "email"], Some(&search("  ")))
            .and_containing(&["name", "email"], None);
        assert!(
            !filter.searching,
            "no search: the cached plan, the list's bound"
        );
        assert_eq!(filter.total_bound(), TOTAL_BOUND);
        filter.and_containing(&["name", "email"], Some(&search(" a_b ")));
        assert_eq!(
            filter.where_clause(),
            "user_id = $1 AND (coalesce(name, '') || E'\\n' || coalesce(email, '')) ILIKE $2"
        );
        assert_eq!(filter.params.len(), 2);
        assert!(filter.searching);
        assert!(filter
            .total_statement("contacts")
            .ends_with(&format!("LIMIT {}) bounded", SEARCH_TOTAL_BOUND + 1)));
    }

    fn search(text: &str) -> Search {
        Search::parse(text).expect("a search")
    }

    #[test]
    fn a_search_is_one_line_of_bounded_text() {
        assert_eq!(search("  Ann 5 ").text(), Some("Ann 5"));
        assert_eq!(search("   ").text(), None);
        let longest = "x".repeat(MAX_SEARCH_CHARS);
        assert_eq!(search(&longest).text(), Some(longest.as_str()));
        // A line break would match across the columns joined by one; Postgres refuses a NUL.
        for refused in [
            "ann\n+1415",
            "a\u{0}b",
            "a\tb",
            &"x".repeat(MAX_SEARCH_CHARS + 1),
        ] {
            let err = Search::parse(refused).expect_err(refused);
            assert_eq!((err.status.as_u16(), err.code), (400, "validation_error"));
        }
        let from_query: Result<Search, _> = serde_json::from_str("\"a\\u0000b\"");
        assert!(from_query
            .expect_err("refused")
            .to_string()
            .contains("search: must not contain control or invisible formatting characters"));
    }

    #[test]
    fn a_search_over_two_tables_is_one_lookup_each_under_every_condition() {
        const FROM: &str = "calls c LEFT JOIN contacts ct ON ct.id = c.contact_id";
        let keyset = Keyset {
            time: "c.created_at",
            id: "c.id",
        };
        let ways = [
            Searched {
                columns: &["c.phone_number"],
                tenant: "c.user_id",
                joined: None,
                sampled_by: None,
            },
            Searched {
                columns: &["ct.name", "ct.tag"],
                tenant: "ct.user_id",
                joined: Some(Joined {
                    table: "contacts ct",
                    on: "ct.id = c.contact_id AND ct.user_id = c.user_id",
                }),
                sampled_by: Some("ct.id"),
            },
        ];
        let tenant = TenantId::from_trusted(Uuid::nil());
        let mut filter = Filter::default();
        filter
            .and("c.user_id = $", vec![Box::new(1_i32)])
            .and("c.status = $", vec![Box::new("failed")])
            .and_containing_any(tenant, Some(&search("  ")), FROM, "c.id", &ways);
        assert!(!filter.searching, "a blank search adds nothing");
        // One trigram: "5_5".
        filter.and_containing_any(tenant, Some(&search(" 5_5 ")), FROM, "c.id", &ways);
        assert!(filter.searching);
        assert_eq!(
            filter.params.len(),
            5,
            "the pattern, tenant and trigrams bound once for both"
        );
        let by_number =
            "tenant_trigrams(c.user_id, lower_trigrams((coalesce(c.phone_number, '')))) \
            @> tenant_trigrams($4, $5) AND (coalesce(c.phone_number, '')) ILIKE $3";
        let by_contact =
            "(ct.id = c.contact_id AND ct.user_id = c.user_id AND tenant_trigrams(ct.user_id, \
            lower_trigrams((coalesce(ct.name, '') || E'\\n' || coalesce(ct.tag, '')))) @> \
            tenant_trigrams($4, $5) AND (coalesce(ct.name, '') || E'\\n' || coalesce(ct.tag, '')) \
            ILIKE $3)";
        let lookup = |alternative: &str, tail: &str| {
            format!(
                "(SELECT c.id FROM {FROM} WHERE c.user_id = $1 AND c.status = $2{} AND {alternative}{tail})",
                if tail.contains("ORDER") { " AND (c.created_at, c.id) < ($6, $7)" } else { "" }
            )
        };
        // Counted to a bound, the contacts' sixteenth with a trigram index of its own first.
        let sampled_first = |alternative: &str, cut: &str| {
            let rows = format!(
                "SELECT c.id FROM {FROM} WHERE c.user_id = $1 AND c.status = $2 AND {alternative}"
            );
            format!(
                "({rows} AND search_sampled(ct.id) UNION ALL {rows} AND NOT search_sampled(ct.id){cut})"
            )
        };
        let order = " ORDER BY c.created_at DESC, c.id DESC LIMIT $8";
        assert_eq!(
            filter.page_statement("SELECT c.id FROM calls c", &keyset, true),
            format!(
                "SELECT c.id FROM calls c WHERE c.id IN ({} UNION ALL {}){order}",
                lookup(by_number, order),
                lookup(by_contact, order)
            ),
            "each lookup finds its newest rows after the cursor; the page is the newest of those"
        );
        let cut = format!(" LIMIT {}", SEARCH_TOTAL_BOUND + 1);
        assert_eq!(
            filter.total_statement(FROM),
            format!(
                "SELECT count(*) FROM ({} UNION {}) bounded",
                lookup(by_number, &cut),
                lookup(by_contact, &cut)
            ),
            "each lookup counted to the bound, a row both match once; no sample before a fit"
        );
        let counted_in_full = format!(
            "SELECT count(*) FROM ({} UNION {}) matched",
            lookup(by_number, ""),
            lookup(by_contact, "")
        );
        assert_eq!(filter.count_statement(FROM), counted_in_full);

        // Read in order within a window, looked up when it holds too few and more rows follow.
        filter.fit(window::Window::new(FROM, &keyset), SAMPLED_ROWS);
        let matched = "(coalesce((coalesce(c.phone_number, '')) ILIKE $3, false) OR EXISTS \
            (SELECT 1 FROM contacts ct WHERE ct.id = c.contact_id AND ct.user_id = c.user_id AND \
            coalesce((coalesce(ct.name, '') || E'\\n' || coalesce(ct.tag, '')) ILIKE $3, false)))";
        let others = "c.user_id = $1 AND c.status = $2";
        let newest = |cursor: &str, size: &str| {
            format!(
                "(SELECT c.* FROM {FROM} WHERE {others}{cursor} ORDER BY c.created_at DESC, \
                 c.id DESC LIMIT {size}) c"
            )
        };
        let holds = |cursor: &str, size: &str| {
            format!(
                "EXISTS (SELECT 1 FROM {FROM} WHERE {others}{cursor} ORDER BY c.created_at DESC, \
                 c.id DESC OFFSET {size} - 1)"
            )
        };
        let cursor = " AND (c.created_at, c.id) < ($6, $7)";
        let size = format!("$8::bigint * {PAGE_WINDOW_PER_ROW}");
        let gate = format!("{cursor} AND w.matched < $8 AND {}", holds(cursor, &size));
        let lookup_gated = |alternative: &str, tail: &str, gate: &str| {
            format!("(SELECT c.id FROM {FROM} WHERE {others}{gate} AND {alternative}{tail})")
        };
        assert_eq!(
            filter.page_statement("SELECT c.id FROM calls c", &keyset, true),
            format!(
                "SELECT c.id FROM calls c WHERE c.id IN (SELECT found.id FROM (SELECT count(*) AS \
                 matched, array_agg(m.id) AS ids FROM (SELECT c.id AS id FROM {} WHERE {matched} \
                 LIMIT $8) m) w, LATERAL (SELECT unnest(w.ids) AS id UNION ALL {} UNION ALL {}) \
                 found){order}",
                newest(cursor, &size),
                lookup_gated(by_number, order, &gate),
                lookup_gated(by_contact, order, &gate),
            ),
            "the window's matches after the cursor; short of a page in a full window, the lookups'"
        );
        let cut = SEARCH_TOTAL_BOUND + 1;
        let size = (COUNT_WINDOW_PER_ROW * cut).to_string();
        let bounded = format!(" LIMIT {cut}");
        assert_eq!(
            filter.total_statement(FROM),
            format!(
                "SELECT CASE WHEN w.matched <= {SEARCH_TOTAL_BOUND} AND {} THEN (SELECT count(*) \
                 FROM ({} UNION {}) looked) ELSE w.matched END FROM (SELECT count(*) AS matched \
                 FROM (SELECT 1 FROM {} WHERE {matched} LIMIT {cut}) m) w",
                holds("", &size),
                lookup(by_number, &bounded),
                sampled_first(by_contact, &bounded),
                newest("", &size),
            ),
            "the window's matches, counted to the bound; under it in a full window, the lookups'"
        );
        assert_eq!(
            filter.count_statement(FROM),
            counted_in_full,
            "counted in full, looked up"
        );

        // Rows that hold the fragment less often: a page reads in order, a total looks up.
        filter.fit(window::Window::new(FROM, &keyset), COUNTED_MATCHES - 1);
        assert_eq!(
            filter.total_statement(FROM),
            format!(
                "SELECT count(*) FROM ({} UNION {}) bounded",
                lookup(by_number, &bounded),
                sampled_first(by_contact, &bounded)
            )
        );
        assert!(
            filter
                .page_statement("SELECT c.id FROM calls c", &keyset, false)
                .contains("unnest(w.ids)"),
            "a page still reads in its window"
        );
        filter.fit(window::Window::new(FROM, &keyset), COMMON_MATCHES - 1);
        assert!(!filter
            .page_statement("SELECT c.id FROM calls c", &keyset, false)
            .contains("unnest(w.ids)"));
        // None of the newest rows holds it: likely rare, looked up in the whole index alone.
        filter.fit(window::Window::new(FROM, &keyset), 0);
        assert_eq!(
            filter.total_statement(FROM),
            format!(
                "SELECT count(*) FROM ({} UNION {}) bounded",
                lookup(by_number, &bounded),
                lookup(by_contact, &bounded)
            )
        );
    }

    #[test]
    fn a_search_in_few_rows_is_one_condition_no_index_serves() {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(1_i32)])
            .and_containing(&["name", "email"], Some(&search("ann")));
        let searched = "(coalesce(name, '') || E'\\n' || coalesce(email, ''))";
        assert_eq!(
            filter.where_clause(),
            format!("user_id = $1 AND {searched} ILIKE $2")
        );
        filter.fit(
            window::Window::new("contacts", &Keyset::CREATED),
            COMMON_MATCHES,
        );
        assert_eq!(
            filter.where_clause(),
            format!("user_id = $1 AND coalesce({searched} ILIKE $2, false)"),
            "without trigrams, read in order to the end"
        );
        assert_eq!(highest_placeholder("a = $1 AND b < $12 AND c = $3"), 12);
    }

    #[test]
    fn a_tenants_search_looks_its_trigrams_up_with_the_tenant() {
        let tenant = TenantId::from_trusted(Uuid::nil());
        let searched = Searched {
            columns: &["name"],
            tenant: "user_id",
            joined: None,
            sampled_by: Some("id"),
        };
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(*tenant.as_uuid())])
            .and_containing_in(tenant, &searched, Some(&search("Ann 5")));
        assert_eq!(
            filter.params.len(),
            4,
            "the pattern, the tenant, the trigrams"
        );
        assert_eq!(
            filter.where_clause(),
            "user_id = $1 AND tenant_trigrams(user_id, lower_trigrams((coalesce(name, '')))) \
             @> tenant_trigrams($3, $4) AND (coalesce(name, '')) ILIKE $2"
        );
        let rows = format!("SELECT 1 FROM people WHERE {}", filter.where_clause());
        let cut = format!(" LIMIT {}", SEARCH_TOTAL_BOUND + 1);
        let people = window::Window::new("people", &Keyset::CREATED);
        filter.fit(people, 0);
        assert_eq!(
            filter.total_statement("people"),
            format!("SELECT count(*) FROM ({rows}{cut}) bounded"),
            "none of the newest rows holds it: no sample"
        );
        filter.fit(window::Window::new("people", &Keyset::CREATED), 1);
        assert_eq!(
            filter.total_statement("people"),
            format!(
                "SELECT count(*) FROM ({rows} AND search_sampled(id) UNION ALL {rows} \
                 AND NOT search_sampled(id) LIMIT {}) bounded",
                SEARCH_TOTAL_BOUND + 1
            ),
            "counted to the bound, the sampled rows' index first"
        );

        let mut short = Filter::default();
        short.and_containing_in(tenant, &searched, Some(&search("an")));
        assert_eq!(
            short.where_clause(),
            "(coalesce(name, '')) ILIKE $1",
            "two letters have no trigram to look up"
        );
        assert_eq!(
            short.total_statement("people"),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM people WHERE (coalesce(name, '')) ILIKE $1 \
                 LIMIT {}) bounded",
                SEARCH_TOTAL_BOUND + 1
            ),
            "nothing to look up, no sample"
        );
    }

    #[test]
    fn a_search_read_in_order_is_counted_in_order() {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(1_i32)])
            .and_containing(&["name"], Some(&search("ann")));
        let cut = SEARCH_TOTAL_BOUND + 1;
        assert_eq!(
            filter.total_statement("contacts"),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM contacts WHERE user_id = $1 AND \
                 (coalesce(name, '')) ILIKE $2 LIMIT {cut}) bounded"
            ),
            "unfitted, as added"
        );
        filter.fit(
            window::Window::new("contacts", &Keyset::CREATED),
            COUNTED_MATCHES,
        );
        assert_eq!(
            filter.total_statement("contacts"),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM contacts WHERE user_id = $1 AND \
                 coalesce((coalesce(name, '')) ILIKE $2, false) ORDER BY created_at DESC, id DESC \
                 LIMIT {cut}) bounded"
            )
        );
    }

    #[test]
    fn pages_by_id_take_the_cursor_and_limit_after_the_filter() {
        let mut filter = Filter::default();
        filter.and("user_id = $", vec![Box::new(1_i32)]);
        assert_eq!(
            filter.page_by_id_statement("SELECT id FROM audit_log", true),
            "SELECT * FROM (SELECT id FROM audit_log WHERE user_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT 100) page LIMIT $3"
        );
        assert_eq!(
            filter.page_by_id_statement("SELECT id FROM audit_log", false),
            "SELECT * FROM (SELECT id FROM audit_log WHERE user_id = $1 \
             ORDER BY id DESC LIMIT 100) page LIMIT $2"
        );
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }

    #[test]
    fn bounded_counts_stop_one_past_the_bound() {
        let limit = format!("LIMIT {})", TOTAL_BOUND + 1);
        assert!(Filter::default().total_statement("calls").contains(&limit));
        assert_eq!(
            Total::bounded_by(TOTAL_BOUND, TOTAL_BOUND),
            Total {
                count: TOTAL_BOUND,
                exact: true
            }
        );
        assert_eq!(
            Total::bounded_by(TOTAL_BOUND + 1, TOTAL_BOUND),
            Total {
                count: TOTAL_BOUND,
                exact: false
            }
        );
    }

    #[test]
    fn numbers_placeholders_in_order() {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(1_i32)])
            .and_some("status = $", None::<String>)
            .and_some("type = $", Some("call".to_owned()))
            .and("(a, b) < ($, $)", vec![Box::new(2_i32), Box::new(3_i32)]);
        assert_eq!(
            filter.where_clause(),
            "user_id = $1 AND type = $2 AND (a, b) < ($3, $4)"
        );
        assert_eq!(filter.next_placeholder(0), "$5");
        assert_eq!(filter.params_with(&[&10_i64]).len(), 5);
    }
}
