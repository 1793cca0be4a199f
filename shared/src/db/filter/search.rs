//! The search box's condition of a [`Filter`]: a fragment looked up in the tenant's entries of
//! a trigram index, or read in the list's order (within a window, `window.rs`) when the newest
//! rows often hold it, over one table or several.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use super::{all_of, trigrams, window::Window, Filter, Keyset};
use crate::{db::statements::PlannedPerRun, error::AppResult, tenant::TenantId, text};

/// How long a search may be: longer than any name, number, e-mail or company it looks for.
pub const MAX_SEARCH_CHARS: usize = 200;

/// What a search box sends, parsed from the query string: one line, trimmed, at most
/// [`MAX_SEARCH_CHARS`] characters, no control characters. Postgres refuses a NUL, and a
/// line break could match across the columns a search looks in, which are matched as one
/// text joined by line breaks ([`searched_text`]). Blank searches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Search(String);

impl Search {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let text = text::optional_line("search", Some(raw), MAX_SEARCH_CHARS)?;
        Ok(Self(text.unwrap_or_default()))
    }

    /// The text to look for; none when blank.
    pub fn text(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|text| !text.is_empty())
    }
}

impl TryFrom<String> for Search {
    type Error = std::borrow::Cow<'static, str>;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).map_err(|err| err.message)
    }
}

/// `%text%` for ILIKE, with the user's own `%`, `_` and `\` taken literally.
pub(super) fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `searched ILIKE pattern` as a search read in the list's order runs it. Postgres judges an
/// `ILIKE` it has no statistics for by the pattern's length (six characters: one row in
/// 15,000), and then collects and sorts all the tenant's rows rather than read them in order
/// (the largest tenant's count of `+12001`: 3.2 s). A condition it cannot judge at all holds,
/// to it, for half of the rows, as a fragment that is read in order does for many: wrapped in
/// `coalesce` (the text is never NULL), it reads in order, 16 ms.
pub(super) fn unindexed(searched: &str, pattern: &str) -> String {
    format!("coalesce({searched} ILIKE {pattern}, false)")
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

/// That a tenant's row (its tenant in `tenant_column`) has in its `searched` text every
/// trigram of `keys` (the tenant's and the trigrams' placeholders), as its trigram index (V0024)
/// finds it.
fn keyed(tenant_column: &str, searched: &str, (tenant, trigrams): &(String, String)) -> String {
    format!(
        "tenant_trigrams({tenant_column}, lower_trigrams({searched})) @> tenant_trigrams({tenant}, {trigrams})"
    )
}

/// `columns` as the one text a search looks in: each column's value (an empty line for
/// NULL), joined by line breaks. A trigram index serves a search only on this exact
/// expression, so V0024 spells each of its indexes as this renders for the list's columns.
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
    pub(super) ways: Vec<Way>,
}

/// One of the [`Alternatives`]: its condition, and the [`sampled`] condition of its table's
/// rows whose trigram entries a total looks up first, when its table has such an index.
pub(super) struct Way {
    pub(super) condition: String,
    pub(super) sample: Option<String>,
}

/// That the row `id` (SQL) is one of the sixteenth of its table's rows whose trigram entries
/// an index of their own also holds (V0036): the condition that index is read under.
fn sampled(id: &str) -> String {
    format!("search_sampled({id})")
}

/// `SELECT what FROM from WHERE conditions`, then `cut` (` LIMIT n`); with a `sample` (a
/// [`sampled`] condition), the rows it holds first and the others after, so that a lookup's
/// cut may stop in the sample's small index, before the whole index gathers every match.
pub(super) fn sampled_first(
    what: &str,
    from: &str,
    conditions: &str,
    sample: Option<&str>,
    cut: &str,
) -> String {
    match sample {
        Some(sample) => format!(
            "SELECT {what} FROM {from} WHERE {conditions} AND {sample} \
             UNION ALL SELECT {what} FROM {from} WHERE {conditions} AND NOT {sample}{cut}"
        ),
        None => format!("SELECT {what} FROM {from} WHERE {conditions}{cut}"),
    }
}

/// Where a search looks in one table: its text in `columns` (as [`searched_text`] joins them,
/// which that table's trigram index has, V0024), the table's `tenant` column (the index keys
/// each trigram with the tenant), and, in a search over several tables
/// ([`Filter::and_containing_any`]), how that table is `joined` to the list's.
pub struct Searched<'a> {
    pub columns: &'a [&'a str],
    pub tenant: &'a str,
    pub joined: Option<Joined<'a>>,
    /// The row's id when its table also has a trigram index of a sixteenth of its rows
    /// (contacts, V0036; leads, V0037): a total, counted to its bound, looks the fragment up
    /// among those first, and in the whole index only while they hold fewer matches than the
    /// bound.
    pub sampled_by: Option<&'a str>,
}

/// A table a search looks in besides the list's: the `table` (with its alias), and `on`, what
/// ties its row to the list's row.
pub struct Joined<'a> {
    pub table: &'a str,
    pub on: &'a str,
}

/// How many of the newest rows a search reads first ([`Filter::fit_search_to_rows`]) to tell
/// whether to read on in the list's order or to look the fragment up. Postgres cannot judge
/// this: its statistics know how often each of a tenant's trigrams occurs, but not that a
/// fragment's trigrams occur together, and it took a number prefix every one of a tenant's
/// million calls holds for a rare one (48 s).
pub const SAMPLED_ROWS: i64 = 200;

/// How many of the [`SAMPLED_ROWS`] must hold the fragment (2 %, one row in 50) for a page
/// to read on in order: it then expects a page of 20 within its window of 1,000 rows
/// ([`PAGE_WINDOW_PER_ROW`](super::PAGE_WINDOW_PER_ROW)), and looks up only when the window
/// falls short, while the lookup reads every match, 20,000 of a million calls. Reading on
/// wrongly costs at most the window; looking up wrongly costs every match. With 6 (3 %), a
/// fragment one call in 28 holds (7.1 of 200 on average) was looked up in about 28 % of
/// samples: 34,475 of the largest tenant's calls read and sorted, 80 ms.
pub const COMMON_MATCHES: i64 = 4;

/// How many of the [`SAMPLED_ROWS`] must hold the fragment (10 %) for a total to count on in
/// order. Counting to [`SEARCH_TOTAL_BOUND`](super::SEARCH_TOTAL_BOUND) in order reads a row
/// for each match and more for each that does not; a lookup counts its first thousand in any
/// order, but reads every match's index entry. In the largest tenant's calls, a fragment one
/// call in 70 holds took 417 ms counted in order, 4.4 ms looked up; one that one call in six
/// holds, 5.8 ms in order, 98 ms looked up.
pub const COUNTED_MATCHES: i64 = 20;

/// How many rows a list has at most for a search that reads it in order to read it to its end,
/// a page and a total alike, rather than within a window: at most 1,000 rows, 6.5 ms of the
/// calls of the 10M bench's largest tenant, and in the median tenant (378 calls) 2 ms less
/// than planning the window's lookups. Telling costs 0.2 to 0.5 ms in a larger list.
pub const SHORT_LIST_ROWS: i64 = 1_000;

/// How a statement reads the filter's search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Reading {
    /// As added: looked up in its trigram index, or no index at all (no search, an admin's).
    AsAdded,
    /// In the list's order, to the end if need be: a fragment without trigrams.
    InOrder,
    /// In the list's order within a window, then looked up past it.
    Windowed,
}

/// What [`Filter::fit_search_to_rows`] found: where the search reads, and whether a page
/// and a total read it in order.
pub(super) struct Fitted {
    pub(super) window: Window,
    pub(super) page_in_order: bool,
    pub(super) count_in_order: bool,
    /// The sampled rows held the fragment at least once.
    pub(super) seen: bool,
}

impl Filter {
    /// Adds, when `search` is not blank, that one of `columns` contains it: a search box's
    /// filter (case-insensitive; `%`, `_` and `\` are taken literally), planned for its own
    /// pattern at every run ([`PlannedPerRun`]) and counted to
    /// [`SEARCH_TOTAL_BOUND`](super::SEARCH_TOTAL_BOUND); over a table no trigram index
    /// serves ([`Filter::and_containing_in`] is the tenant's lists'). The columns are searched
    /// as one text, [`searched_text`].
    pub fn and_containing(&mut self, columns: &[&str], search: Option<&Search>) -> &mut Self {
        self.contain(columns, None, search)
    }

    /// [`Filter::and_containing`] over a tenant's table whose trigram index (V0024) holds
    /// `searched`'s text: looked up in the index under the fragment's trigrams, or read in the
    /// list's order ([`Filter::fit_search_to_rows`]).
    pub fn and_containing_in(
        &mut self,
        tenant: TenantId,
        searched: &Searched,
        search: Option<&Search>,
    ) -> &mut Self {
        self.contain(searched.columns, Some((tenant, searched)), search)
    }

    fn contain(
        &mut self,
        columns: &[&str],
        indexed: Option<(TenantId, &Searched)>,
        search: Option<&Search>,
    ) -> &mut Self {
        let Some(text) = search.and_then(Search::text) else {
            return self;
        };
        self.searching = true;
        let pattern = self.search_pattern(text);
        let searched = searched_text(columns);
        self.search_sample = indexed.and_then(|(_, way)| way.sampled_by).map(sampled);
        let keys = indexed.and_then(|(tenant, way)| {
            self.trigram_keys(tenant, text)
                .map(|keys| format!("{} AND ", keyed(way.tenant, &searched, &keys)))
        });
        self.search_at = Some(self.conditions.len());
        self.conditions.push(format!(
            "{}{searched} ILIKE {pattern}",
            keys.unwrap_or_default()
        ));
        self.unindexed = Some(unindexed(&searched, &pattern));
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
        tenant: TenantId,
        search: Option<&Search>,
        from: &str,
        id: &'static str,
        alternatives: &[Searched],
    ) -> &mut Self {
        let Some(text) = search.and_then(Search::text) else {
            return self;
        };
        assert!(
            !self.searching && self.alternatives.is_none(),
            "one search per filter"
        );
        self.searching = true;
        let pattern = self.search_pattern(text);
        let keys = self.trigram_keys(tenant, text);
        let ways = alternatives
            .iter()
            .map(|way| {
                let searched = searched_text(way.columns);
                let matched = match &keys {
                    Some(keys) => format!(
                        "{} AND {searched} ILIKE {pattern}",
                        keyed(way.tenant, &searched, keys)
                    ),
                    None => format!("{searched} ILIKE {pattern}"),
                };
                Way {
                    condition: match &way.joined {
                        Some(joined) => format!("({} AND {matched})", joined.on),
                        None => matched,
                    },
                    sample: way.sampled_by.map(sampled),
                }
            })
            .collect();
        // Read in order, a joined table's row is read only for a row the list's own columns do
        // not match: the largest tenant's count of `+12001` read 5,047 buffers joined, 1,043 so.
        let each_unindexed: Vec<String> = alternatives
            .iter()
            .map(|way| {
                let matched = unindexed(&searched_text(way.columns), &pattern);
                match &way.joined {
                    Some(joined) => format!(
                        "EXISTS (SELECT 1 FROM {} WHERE {} AND {matched})",
                        joined.table, joined.on
                    ),
                    None => matched,
                }
            })
            .collect();
        self.unindexed = Some(format!("({})", each_unindexed.join(" OR ")));
        self.alternatives = Some(Alternatives {
            from: from.to_owned(),
            id,
            ways,
        });
        self
    }

    /// The search's `ILIKE` pattern for `text`, bound: its placeholder.
    fn search_pattern(&mut self, text: &str) -> String {
        self.params.push(Box::new(like_pattern(text)));
        self.pattern_at = self.params.len();
        format!("${}", self.params.len())
    }

    /// The tenant and the trigrams every text holding `text` has, bound: their placeholders;
    /// none when it has no trigram, so no index can find it (one or two characters).
    fn trigram_keys(&mut self, tenant: TenantId, text: &str) -> Option<(String, String)> {
        let trigrams = trigrams::of_fragment(text);
        if trigrams.is_empty() {
            return None;
        }
        self.params.push(Box::new(*tenant.as_uuid()));
        self.params.push(Box::new(trigrams));
        let at = self.params.len();
        Some((format!("${}", at - 1), format!("${at}")))
    }

    /// The parameters of a statement that names none of the lookup's (its tenant and
    /// trigrams, bound last): the filter's up to the search's pattern.
    pub(super) fn params_before_lookup(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.params_with(&[]);
        params.truncate(self.pattern_at);
        params
    }

    /// Whether the search's trigram lookup has its tenant and trigrams bound (after the
    /// pattern, the search being the filter's last condition).
    fn has_trigram_keys(&self) -> bool {
        self.params.len() > self.pattern_at
    }

    /// Fits the search to the tenant's rows: of the [`SAMPLED_ROWS`] newest that the filter's
    /// other conditions match (in `keyset`'s order, the list's, which `from`, the list's tables,
    /// are read in), how many hold the fragment decides whether a page reads on in order
    /// ([`COMMON_MATCHES`]) and whether a total counts on in order ([`COUNTED_MATCHES`]),
    /// each within a window past which it looks the fragment up; otherwise each looks it up in
    /// the tenant's trigram entries. A fragment without trigrams, a list of fewer rows than the
    /// sample, or one of fewer than [`SHORT_LIST_ROWS`] that a page reads in order, is read in
    /// order to its end.
    pub async fn fit_search_to_rows(
        &mut self,
        db: &impl PlannedPerRun,
        from: &str,
        keyset: &Keyset,
    ) -> AppResult<()> {
        let Some(unindexed) = &self.unindexed else {
            return Ok(());
        };
        let window = Window::new(from, keyset);
        let matches = if self.has_trigram_keys() {
            let others = self.others_clause();
            assert!(
                highest_placeholder(&others) < self.pattern_at,
                "the search is the filter's last condition"
            );
            let statement = format!(
                "SELECT count(*) FILTER (WHERE {unindexed}), count(*), {} FROM {}",
                window.holds(&others, "", &SHORT_LIST_ROWS.to_string()),
                window.newest(&others, "", &SAMPLED_ROWS.to_string()),
            );
            // The lookup's tenant and trigrams, bound last: a statement must name every
            // parameter it is sent, and the sample names none of them.
            let params = self.params_before_lookup();
            // Planned per run, although its plan reads the newest rows whatever the fragment:
            // its constant `OFFSET` near an average tenant's size could make a kept plan, made
            // for any tenant, sort the largest tenant's rows (as a window's total's did, 1.7 s).
            let sample = self.one_row(db, &statement, params).await?;
            let (matches, rows, long): (i64, i64, bool) =
                (sample.try_get(0)?, sample.try_get(1)?, sample.try_get(2)?);
            if rows < SAMPLED_ROWS || (!long && matches >= COMMON_MATCHES) {
                // Read in order, the list's every row costs less than a window's lookup, or
                // than planning one; no statement names the lookup now.
                self.params.truncate(self.pattern_at);
                SAMPLED_ROWS
            } else {
                matches
            }
        } else {
            SAMPLED_ROWS
        };
        self.fit(window, matches);
        Ok(())
    }

    /// Fits the search as [`Filter::fit_search_to_rows`] does for `matches` of the sampled rows
    /// of `window`.
    pub(super) fn fit(&mut self, window: Window, matches: i64) {
        self.fitted = Some(Fitted {
            window,
            page_in_order: matches >= COMMON_MATCHES,
            count_in_order: matches >= COUNTED_MATCHES,
            seen: matches > 0,
        });
    }

    /// Whether a total looks the search up in its table's sample first: when it is looked up
    /// and the newest rows held it. A fragment none of the [`SAMPLED_ROWS`] holds is most
    /// likely rare, and its lookup in the whole index gathers few entries: the sample's lookup
    /// would only add to it (about 0.6 ms, mostly planning it, at 10M calls).
    fn samples_first(&self) -> bool {
        self.has_trigram_keys() && self.fitted.as_ref().is_some_and(|fitted| fitted.seen)
    }

    /// How a page reads the search.
    pub(super) fn page_reading(&self) -> Reading {
        self.reading(self.fitted.as_ref().is_some_and(|f| f.page_in_order))
    }

    /// How a total reads the search.
    pub(super) fn count_reading(&self) -> Reading {
        self.reading(self.fitted.as_ref().is_some_and(|f| f.count_in_order))
    }

    fn reading(&self, in_order: bool) -> Reading {
        match (in_order, self.has_trigram_keys()) {
            (false, _) => Reading::AsAdded,
            (true, false) => Reading::InOrder,
            (true, true) => Reading::Windowed,
        }
    }

    /// The search as one condition read in order.
    pub(super) fn unindexed_condition(&self) -> &str {
        self.unindexed.as_deref().expect("a search over one text")
    }

    /// The conditions but the search.
    pub(super) fn others_clause(&self) -> String {
        let others = self
            .conditions
            .iter()
            .enumerate()
            .filter(|(at, _)| Some(*at) != self.search_at)
            .map(|(_, condition)| condition.as_str())
            .collect::<Vec<_>>();
        all_of(&others)
    }

    /// A one-table search's [`sampled`] condition, when its table has that index and a total
    /// looks it up there first ([`Filter::samples_first`], [`sampled_first`]).
    pub(super) fn search_sample(&self) -> Option<&str> {
        self.search_sample
            .as_deref()
            .filter(|_| self.samples_first())
    }

    /// A total of `from`'s rows that `conditions` match (the search as `reading` reads it),
    /// stopping past `cut`: in the list's order when read so, or looked up in the search's
    /// sample first when its table has one. Read in order, a search has no sample: no index
    /// looks it up.
    pub(super) fn one_table_total(
        &self,
        from: &str,
        conditions: &str,
        reading: Reading,
        cut: &str,
    ) -> String {
        let tail = format!("{}{cut}", self.read_in_order(reading));
        format!(
            "SELECT count(*) FROM ({}) bounded",
            sampled_first("1", from, conditions, self.search_sample(), &tail)
        )
    }

    /// [`Filter::lookups`] for a count of `from`'s rows, which must be the tables the
    /// alternatives were added for.
    pub(super) fn lookups_of(
        &self,
        from: &str,
        conditions: &str,
        (tail, sample_first): (&str, bool),
        union: &str,
    ) -> Option<String> {
        let lookups = self.lookups(conditions, (tail, sample_first), union)?;
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
        let lookups = self.lookups(conditions, (tail, false), " UNION ALL ")?;
        let id = self.alternatives.as_ref()?.id;
        Some(format!("{id} IN ({lookups})"))
    }

    /// With [`Filter::and_containing_any`]'s alternatives, their lookups: each one's `id`s of
    /// the rows that `conditions` and it match, then `tail` (an order, a cut), joined by
    /// `union`; with `sample_first` (`tail` a cut alone), each [`sampled_first`] where its
    /// table has a sample.
    pub(super) fn lookups(
        &self,
        conditions: &str,
        (tail, sample_first): (&str, bool),
        union: &str,
    ) -> Option<String> {
        let alternatives = self.alternatives.as_ref()?;
        Some(
            alternatives
                .ways
                .iter()
                .map(|way| {
                    let sample = way
                        .sample
                        .as_deref()
                        .filter(|_| sample_first && self.samples_first());
                    format!(
                        "({})",
                        sampled_first(
                            alternatives.id,
                            &alternatives.from,
                            &format!("{conditions} AND {}", way.condition),
                            sample,
                            tail
                        )
                    )
                })
                .collect::<Vec<_>>()
                .join(union),
        )
    }
}
