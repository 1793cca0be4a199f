//! A search read in the list's order within a window of the newest rows, and looked up in its
//! trigram index past the window: one statement, whose lookup runs only when the window
//! neither found what was wanted nor reached the last row.
//!
//! Reading in order costs each row it reads (6.5 µs a call with its contact, in the largest
//! tenant of the 10M bench); a lookup costs each row that holds the fragment, wherever it is.
//! The newest rows [`fit_search_to_rows`](Filter::fit_search_to_rows) samples may hold a
//! fragment that older rows hold rarely or never: read in order without a bound, the next page
//! or the count of such a fragment read the rest of the tenant (8.3 s for a million calls).

use super::{Filter, Keyset, SEARCH_TOTAL_BOUND};

/// How many rows a page read in order reads at most for each row it is to find: 50, past the
/// one in 33 ([`COMMON_MATCHES`](super::COMMON_MATCHES) of [`SAMPLED_ROWS`](super::SAMPLED_ROWS))
/// that chose to read in order. A page of 20 reads at most 1,000 rows (6.5 ms in the largest
/// tenant's calls), an export's page of 5,000 at most 250,000.
pub const PAGE_WINDOW_PER_ROW: i64 = 50;

/// How many rows a total read in order reads at most for each row it counts to its bound: 15,
/// past the one in 10 ([`COUNTED_MATCHES`](super::COUNTED_MATCHES) of the sampled rows) that
/// chose to count in order. Counting to [`SEARCH_TOTAL_BOUND`] reads at most 15,015 rows
/// (about 100 ms in the largest tenant's calls; unbounded, a fragment one call in 70 holds read
/// 73,455 of them, 417 ms).
pub const COUNT_WINDOW_PER_ROW: i64 = 15;

/// Where a fitted search is read: the list's tables and order.
pub(super) struct Window {
    pub(super) from: String,
    pub(super) keyset: Keyset,
}

impl Filter {
    /// `WITH windowed AS MATERIALIZED (…)`: of the newest `size` rows (SQL) that the other
    /// conditions and `cursor` match, numbered in the list's order as `examined`, those that
    /// hold the fragment (`matched`) or are the window's last, at most `cut` (SQL) of them,
    /// with their position in the list (`at`, `id`).
    fn window(&self, window: &Window, cursor: &str, size: &str, cut: &str) -> String {
        let Keyset { time, id } = window.keyset;
        let order = window.keyset.order_by();
        format!(
            "WITH windowed AS MATERIALIZED (SELECT at, id, matched, examined FROM (\
             SELECT {time} AS at, {id} AS id, {} AS matched, \
             row_number() OVER (ORDER BY {order}) AS examined \
             FROM {} WHERE {}{cursor} ORDER BY {order} LIMIT {size}) numbered \
             WHERE matched OR examined = {size} LIMIT {cut}) ",
            self.unindexed_condition(),
            window.from,
            self.others_clause(),
        )
    }

    /// The conditions, after `conditions`, of a row past the window, looked up when the
    /// window was full and held fewer than `wanted` (SQL) matches. Neither holds otherwise,
    /// and Postgres then runs none of the lookup (a one-time filter).
    fn past_the_window(window: &Window, size: &str, wanted: &str) -> String {
        let Keyset { time, id } = window.keyset;
        format!(
            " AND ({time}, {id}) < (SELECT at, id FROM windowed WHERE examined = {size}) \
             AND EXISTS (SELECT 1 FROM windowed WHERE examined = {size}) \
             AND (SELECT count(*) FROM windowed WHERE matched) < {wanted}"
        )
    }

    /// A page's condition read in a window: its row's key is one of the window's first
    /// `limit` (SQL) matches after `cursor`, or, when the window held fewer, of the newest
    /// `limit` looked up past it.
    pub(super) fn in_window(&self, window: &Window, cursor: &str, limit: &str) -> String {
        let size = format!("{limit}::bigint * {PAGE_WINDOW_PER_ROW}");
        let past = format!(
            "{}{cursor}{}",
            self.where_reading(super::Reading::AsAdded),
            Self::past_the_window(window, &size, limit)
        );
        let tail = format!(" ORDER BY {} LIMIT {limit}", window.keyset.order_by());
        format!(
            "{} IN ({}SELECT id FROM windowed WHERE matched UNION ALL {})",
            window.keyset.id,
            self.window(window, cursor, &size, limit),
            self.lookup_ids(window, &past, &tail, " UNION ALL "),
        )
    }

    /// A total read in a window: its matches, counted to the bound; when it held fewer and
    /// was full, plus the matches past it, looked up and counted to the bound.
    pub(super) fn window_total_statement(&self, window: &Window) -> String {
        let cut = (SEARCH_TOTAL_BOUND + 1).to_string();
        let size = (COUNT_WINDOW_PER_ROW * (SEARCH_TOTAL_BOUND + 1)).to_string();
        let past = format!(
            "{}{}",
            self.where_reading(super::Reading::AsAdded),
            Self::past_the_window(window, &size, &cut)
        );
        format!(
            "{}SELECT (SELECT count(*) FROM windowed WHERE matched) + \
             (SELECT count(*) FROM ({}) past)",
            self.window(window, "", &size, &cut),
            self.lookup_ids(window, &past, &format!(" LIMIT {cut}"), " UNION "),
        )
    }

    /// The keys of the rows that `conditions` and the search's lookup match (each alternative
    /// on its own, joined by `union`), each lookup ending in `tail`.
    fn lookup_ids(&self, window: &Window, conditions: &str, tail: &str, union: &str) -> String {
        self.lookups(conditions, tail, union).unwrap_or_else(|| {
            format!(
                "(SELECT {} FROM {} WHERE {conditions}{tail})",
                window.keyset.id, window.from
            )
        })
    }
}
