//! A search's trigram lookups, each bound its own copy of the fragment's runs, and the
//! statement that fits a search to the newest rows: how many hold it, and which runs each
//! lookup's text there holds, so that a lookup leaves out those that tell no row apart
//! ([`trigrams::keyed_runs`]).

use super::{
    search::{unindexed, Joined, SAMPLED_ROWS, SHORT_LIST_ROWS},
    trigrams,
    window::Window,
    Filter,
};
use crate::tenant::TenantId;

/// A search's trigrams ([`trigrams::of_fragment`]) and the lookups keyed on them, each bound
/// its own copy: the fit leaves out of each the runs its text in the newest rows tells nothing
/// by ([`trigrams::keyed_runs`]).
pub(super) struct Keys {
    pub(super) runs: Vec<String>,
    pub(super) lookups: Vec<KeyedLookup>,
}

/// A lookup's text (as [`searched_text`](super::searched_text) renders it), the table it is in when joined to the
/// list's (and how), and the number of its trigrams' parameter.
pub(super) struct KeyedLookup {
    searched: String,
    joined: Option<(String, String)>,
    pub(super) at: usize,
}

impl KeyedLookup {
    pub(super) fn new(searched: &str, joined: Option<&Joined>) -> Self {
        Self {
            searched: searched.to_owned(),
            joined: joined.map(|joined| (joined.table.to_owned(), joined.on.to_owned())),
            at: 0,
        }
    }

    /// Which of the first `count` of `runs` (a `text[]`, SQL) a row holds in the lookup's
    /// text, as `lower_trigrams` lists a text's for the index: a mask, bit `i` for the run at
    /// `i + 1`. Spelled out run by run: an `unnest` for each row cost more than twice as much.
    fn held(&self, runs: &str, count: usize) -> String {
        let searched = &self.searched;
        (0..count)
            .map(|at| {
                let run = format!("({runs}::text[])[{}]", at + 1);
                format!("((strpos(lower({searched}), {run}) > 0)::int << {at})")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Filter {
    /// The tenant and, for each of `lookups`, the trigrams every text holding `text` has,
    /// bound: the tenant's placeholder and each lookup's trigrams'; none when it has no
    /// trigram, so no index can find it (one or two characters).
    pub(super) fn trigram_keys(
        &mut self,
        tenant: TenantId,
        text: &str,
        mut lookups: Vec<KeyedLookup>,
    ) -> Option<(String, Vec<String>)> {
        let runs = trigrams::of_fragment(text);
        if runs.is_empty() {
            return None;
        }
        self.params.push(Box::new(*tenant.as_uuid()));
        let tenant = format!("${}", self.params.len());
        for lookup in &mut lookups {
            self.params.push(Box::new(runs.clone()));
            lookup.at = self.params.len();
        }
        let placeholders = lookups.iter().map(|lookup| format!("${}", lookup.at));
        let placeholders = placeholders.collect();
        self.keys = Some(Keys { runs, lookups });
        Some((tenant, placeholders))
    }

    /// The statement [`Filter::fit_search_to_rows`] sends: of the newest rows, how many hold
    /// the fragment, how many there are, and whether the list is long ([`SHORT_LIST_ROWS`]);
    /// with `runs` (SQL) to test, in a long list (a short one is read in order, or has few
    /// rows to look up), which of them each row holds in each lookup's text. A joined table
    /// is joined to the rows (its row is one at most, [`Joined`]) rather than asked of each
    /// row apart, which cost 0.6 ms more for the largest tenant's 200.
    pub(super) fn fit_statement(
        &self,
        window: &Window,
        others: &str,
        runs: Option<&str>,
    ) -> String {
        let newest = window.newest(others, "", &SAMPLED_ROWS.to_string());
        let long = window.holds(others, "", &SHORT_LIST_ROWS.to_string());
        let (Some(runs), Some(keys)) = (runs, &self.keys) else {
            let matched = self.unindexed_condition();
            return format!(
                "SELECT count(*) FILTER (WHERE {matched}), count(*), {long} FROM {newest}"
            );
        };
        let tested = keys.runs.len().min(trigrams::TESTED_RUNS);
        let pattern = format!("${}", self.pattern_at);
        let (mut matched, mut held, mut joined) = (Vec::new(), String::new(), String::new());
        for lookup in &keys.lookups {
            matched.push(unindexed(&lookup.searched, &pattern));
            let mut rows = "sampled_list.long".to_owned();
            if let Some((table, on)) = &lookup.joined {
                joined.push_str(&format!(" LEFT JOIN {table} ON {on}"));
                rows.push_str(&format!(" AND {on}"));
            }
            let holds = lookup.held(runs, tested);
            held.push_str(&format!(", array_agg({holds}) FILTER (WHERE {rows})"));
        }
        // `OFFSET 0` keeps the list's length one subquery, read once.
        format!(
            "SELECT count(*) FILTER (WHERE {}), count(*), coalesce(bool_or(sampled_list.long), \
             false){held} FROM {newest}{joined}, (SELECT {long} AS long OFFSET 0) sampled_list",
            matched.join(" OR ")
        )
    }
}
