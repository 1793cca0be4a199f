//! The search box's condition of a [`Filter`]: a fragment looked up in a trigram index, or
//! read in a tenant's few rows, over one table or several.

use super::{all_of, Filter, Keyset};
use crate::{db::statements::PlannedPerRun, error::AppResult};

/// `%text%` for ILIKE, with the user's own `%`, `_` and `\` taken literally.
pub(super) fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `searched ILIKE pattern` as no index on `searched` serves it.
pub(super) fn unindexed(searched: &str, pattern: &str) -> String {
    format!("({searched} || '') ILIKE {pattern}")
}

/// The highest `$n` in `sql`.
pub(super) fn highest_placeholder(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// `columns` as the one text a search looks in: each column's value (an empty line for
/// NULL), joined by line breaks. A trigram index serves a search only on this exact
/// expression, so V0020 spells each of its indexes as this renders for the list's columns.
pub fn searched_text(columns: &[&str]) -> String {
    let joined = columns
        .iter()
        .map(|column| format!("coalesce({column}, '')"))
        .collect::<Vec<_>>()
        .join(" || E'\\n' || ");
    format!("({joined})")
}

/// The ways a search over several tables matches a row, each looked up on its own.
pub(super) struct Alternatives {
    /// The tables each lookup reads: the list's, as its total counts them.
    pub(super) from: String,
    /// The row's key, which the lookups answer and the page's rows are picked by.
    pub(super) id: &'static str,
    pub(super) conditions: Vec<String>,
}

/// One way a search over several tables matches ([`Filter::and_containing_any`]): its text
/// in `columns` of one table (as [`searched_text`] joins them, which that table's trigram
/// index has), where `joined` holds (a condition tying that table's row to the list's).
pub struct Searched<'a> {
    pub columns: &'a [&'a str],
    pub joined: Option<&'a str>,
}

/// How many of its rows a tenant reads through in a search instead of looking the fragment up
/// in a trigram index ([`Filter::fit_search_to_rows`]). The lookup reads the fragment's
/// trigrams' entries of every tenant, whose length grows with all the rows: 4–20 ms at
/// ten million calls and three million contacts, while a tenant's own 2,000 rows are read in
/// about as long as the shortest of those.
pub const FEW_ROWS: i64 = 2_000;

/// How many of the newest rows a search's total reads before it looks the fragment up
/// ([`Filter::total_statement`]): enough to find past
/// [`SEARCH_TOTAL_BOUND`](super::SEARCH_TOTAL_BOUND) matches of a fragment half of them hold.
/// In a tenant of a million calls, reading them took about 15 ms (5,000: 45 ms), which a
/// fragment under the bound pays on top of its count.
pub const RECENT_ROWS: i64 = 2_000;

impl Filter {
    /// Adds, when `text` holds more than blanks, that one of `columns` contains it: a search
    /// box's filter (case-insensitive; `%`, `_` and `\` are taken literally), planned for
    /// its own pattern at every run ([`PlannedPerRun`]) and counted to
    /// [`SEARCH_TOTAL_BOUND`](super::SEARCH_TOTAL_BOUND).
    ///
    /// The columns are searched as one text, [`searched_text`], which a trigram index on that
    /// same expression serves (V0020's, for contacts and leads). A text holding a line break,
    /// the joint, could match across two columns there, so it is matched column by column.
    pub fn and_containing(&mut self, columns: &[&str], text: Option<&str>) -> &mut Self {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return self;
        };
        self.searching = true;
        let pattern = self.search_pattern(text);
        if !text.contains('\n') {
            let searched = searched_text(columns);
            self.search_at = Some(self.conditions.len());
            self.conditions.push(format!("{searched} ILIKE {pattern}"));
            self.unindexed = Some((unindexed(&searched, &pattern), false));
            return self;
        }
        let condition = columns
            .iter()
            .map(|column| format!("{column} ILIKE {pattern}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        self.conditions.push(format!("({condition})"));
        self
    }

    /// Adds, when `text` holds more than blanks, that a row matches one of `alternatives`:
    /// a search over columns of more than one table (the call's number and its contact's
    /// details), whose one `OR` no index of either table can serve, so that Postgres would
    /// read every one of the tenant's rows. Case-insensitive, `%`, `_` and `\` taken
    /// literally, as [`Filter::and_containing`]'s.
    ///
    /// Each alternative is looked up on its own, over `from` (the list's tables, which the
    /// alternatives' columns are of), under the filter's other conditions, and answers its
    /// rows' `id`: a page's lookups each find their newest rows (through the alternative's
    /// index, or the list's order, as Postgres plans it for the pattern), and the page is the
    /// newest of those; a total counts each lookup to the bound and the distinct rows of all.
    /// One search per filter.
    pub fn and_containing_any(
        &mut self,
        text: Option<&str>,
        from: &str,
        id: &'static str,
        alternatives: &[Searched],
    ) -> &mut Self {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return self;
        };
        assert!(
            !self.searching && self.alternatives.is_none(),
            "one search per filter"
        );
        self.searching = true;
        let pattern = self.search_pattern(text);
        let render = |way: &Searched, matching: &dyn Fn(&str) -> String| {
            let matched = matching(&searched_text(way.columns));
            match way.joined {
                Some(joined) => format!("({joined} AND {matched})"),
                None => matched,
            }
        };
        let conditions = alternatives
            .iter()
            .map(|way| render(way, &|searched| format!("{searched} ILIKE {pattern}")))
            .collect();
        let each_unindexed: Vec<String> = alternatives
            .iter()
            .map(|way| render(way, &|searched| unindexed(searched, &pattern)))
            .collect();
        self.unindexed = Some((format!("({})", each_unindexed.join(" OR ")), false));
        self.alternatives = Some(Alternatives {
            from: from.to_owned(),
            id,
            conditions,
        });
        self
    }

    /// The search's `ILIKE` pattern for `text`, bound: its placeholder.
    fn search_pattern(&mut self, text: &str) -> String {
        self.params.push(Box::new(like_pattern(text)));
        format!("${}", self.params.len())
    }

    /// Runs the search as one condition no trigram index serves when the rows of `from` (the
    /// list's tables but those only the search reads) that the filter's other conditions
    /// match are at most [`FEW_ROWS`]: reading them is quicker
    /// than the index lookup, whose cost Postgres does not see (it reads every tenant's
    /// entries of the fragment's trigrams). One bounded count first, in the list's `keyset`
    /// order, so that it reads the list's own index.
    pub async fn fit_search_to_rows(
        &mut self,
        db: &impl PlannedPerRun,
        from: &str,
        keyset: &Keyset,
    ) -> AppResult<()> {
        if self.unindexed.is_none() {
            return Ok(());
        }
        let others = self.others_clause();
        // Unordered, Postgres may scan the table for the rows, which are spread through it.
        let statement = format!(
            "SELECT count(*) FROM (SELECT 1 FROM {from} WHERE {others} ORDER BY {} LIMIT {}) bounded",
            keyset.order_by(),
            FEW_ROWS + 1
        );
        // The other conditions' parameters: all but the pattern, the last one bound.
        let others_params = self.params.len() - 1;
        assert_eq!(
            highest_placeholder(&others),
            others_params,
            "the search is the filter's last condition"
        );
        let mut params = self.params_with(&[]);
        params.truncate(others_params);
        // Planned for the tenant, as a search's statements are: a cached generic plan assumes
        // an average tenant's few rows and sorted all of the largest's (leads: 140 ms, against
        // 3 ms read in order).
        let rows: i64 = self.one_row(db, &statement, params).await?.try_get(0)?;
        if let Some((_, few)) = &mut self.unindexed {
            *few = rows <= FEW_ROWS;
        }
        self.newest_first = Some(keyset.order_by());
        Ok(())
    }

    /// The conditions but the search.
    fn others_clause(&self) -> String {
        let others = self
            .conditions
            .iter()
            .enumerate()
            .filter(|(at, _)| Some(*at) != self.search_at)
            .map(|(_, condition)| condition.as_str())
            .collect::<Vec<_>>();
        all_of(&others)
    }

    pub(super) fn reads_unindexed(&self) -> bool {
        matches!(self.unindexed, Some((_, true)))
    }

    /// [`Filter::lookups`] for a count of `from`'s rows, which must be the tables the
    /// alternatives were added for.
    pub(super) fn lookups_of(
        &self,
        from: &str,
        conditions: &str,
        tail: &str,
        union: &str,
    ) -> Option<String> {
        let lookups = self.lookups(conditions, tail, union)?;
        debug_assert_eq!(
            Some(from),
            self.alternatives.as_ref().map(|a| a.from.as_str()),
            "a count over the tables the search was added for"
        );
        Some(lookups)
    }

    /// With [`Filter::and_containing_any`]'s alternatives, that the row's key is one of their
    /// [`Filter::lookups`] (`tail` cutting each): a page's condition.
    pub(super) fn looked_up(&self, conditions: &str, tail: &str) -> Option<String> {
        let lookups = self.lookups(conditions, tail, " UNION ALL ")?;
        let id = self.alternatives.as_ref()?.id;
        Some(format!("{id} IN ({lookups})"))
    }

    /// With [`Filter::and_containing_any`]'s alternatives, their lookups: each one's `id`s of
    /// the rows that `conditions` and it match, then `tail` (an order, a cut), joined by
    /// `union`.
    pub(super) fn lookups(&self, conditions: &str, tail: &str, union: &str) -> Option<String> {
        if self.reads_unindexed() {
            return None;
        }
        let alternatives = self.alternatives.as_ref()?;
        Some(
            alternatives
                .conditions
                .iter()
                .map(|alternative| {
                    format!(
                        "(SELECT {} FROM {} WHERE {conditions} AND {alternative}{tail})",
                        alternatives.id, alternatives.from
                    )
                })
                .collect::<Vec<_>>()
                .join(union),
        )
    }

    /// `counted` (a search's total over `from`), first counted among the newest rows when the
    /// list's order is known ([`Filter::fit_search_to_rows`]) and the search is looked up.
    pub(super) fn newest_first_or(&self, from: &str, counted: String) -> String {
        let bound = self.total_bound();
        let cut = format!(" LIMIT {}", bound + 1);
        // A search counted through a trigram index collects every match first, and Postgres
        // judges how many from the whole table's statistics: a fragment that most of one
        // tenant's rows hold and few of the others' (its numbers' area code) looks rare, and
        // counting it collected 950,000 matches (430 ms) to stop at the bound. So its newest
        // rows are read first, in the list's order: past the bound among them, the count stops
        // there; otherwise (the fragment is rare) the index counts it. An initplan runs only
        // when its branch is taken.
        match (&self.unindexed, &self.newest_first) {
            (Some((unindexed, false)), Some(order)) => format!(
                "SELECT CASE WHEN recent.matches > {bound} THEN recent.matches ELSE ({counted}) END \
                 FROM (SELECT count(*) AS matches FROM (SELECT 1 FROM (SELECT {unindexed} AS matched \
                 FROM {from} WHERE {} ORDER BY {order} LIMIT {RECENT_ROWS}) newest \
                 WHERE matched{cut}) found) recent",
                self.others_clause()
            ),
            _ => counted,
        }
    }
}
