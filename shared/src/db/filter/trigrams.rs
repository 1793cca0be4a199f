//! The trigrams every text containing a fragment holds: its runs of three characters,
//! lowercased, as `lower_trigrams` (V0024) lists a text's for the search indexes.

/// Runs of three characters that every text containing `fragment` holds, case aside: the
/// fragment's own, lowercased, those whose three characters are ASCII, enough of them to cover
/// it. `ILIKE` compares the `lower()` of both sides, and the index lists the runs of the
/// text's; outside ASCII a locale may lower a character to something else than Rust does, and
/// a run left out only widens the lookup, which the `ILIKE` beside it narrows again.
///
/// Runs across a blank or a sign count as any other (`"x 1"` in `"globex 1"`): pg_trgm's
/// trigrams stop at words, so its keys for `"globex 1"` asked only for a word starting with 1,
/// which most numbers hold. And runs that overlap the ones kept are left out: the index reads
/// every key's entries, and in the largest tenant the count of `"globex 1"` took 13.9 ms under
/// its six runs, 10.6 ms under `"glo"`, `"bex"` and `"x 1"`.
pub fn of_fragment(fragment: &str) -> Vec<String> {
    let characters: Vec<char> = fragment.chars().collect();
    let starts: Vec<usize> = (0..characters.len().saturating_sub(2))
        .filter(|&start| characters[start..start + 3].iter().all(char::is_ascii))
        .collect();
    let mut covered_to = 0;
    let mut trigrams = Vec::new();
    for (at, &start) in starts.iter().enumerate() {
        let ends_its_stretch = starts.get(at + 1) != Some(&(start + 1));
        if start >= covered_to || (ends_its_stretch && start + 3 > covered_to) {
            covered_to = start + 3;
            trigrams.push(
                characters[start..covered_to]
                    .iter()
                    .map(char::to_ascii_lowercase)
                    .collect::<String>(),
            );
        }
    }
    trigrams.sort();
    trigrams.dedup();
    trigrams
}

/// How many of a fragment's runs the newest rows are tested for
/// ([`Filter::fit_search_to_rows`](super::Filter::fit_search_to_rows)): a bit each in a row's
/// mask, each spelled out in the statement. A fragment of more runs (over 36 characters, an
/// e-mail address) keys on the others untested.
pub const TESTED_RUNS: usize = 12;

/// The runs of `runs` (a fragment's, [`of_fragment`]) that a lookup keys on, given which of
/// them each of the newest rows holds in the looked-up text (`held`: bit `i` for `runs[i]`,
/// for the first [`TESTED_RUNS`]). A GIN lookup reads every entry of each of its keys,
/// however few rows hold them all: in the 10M bench's largest tenant, a contact's name
/// (`Contact 019112`) took 4.2 ms under its five runs and 0.5 ms under `112` and `191`, as
/// `con` and `tac` are in every contact's text and `t 0` in half. So a run is left out when
/// at least half the rows hold it and it told none of them apart (every row that holds the
/// other runs kept holds it too): its entries cost more than the few rows it would spare the
/// `ILIKE`. A run fewer rows hold stays, even when the rows tell nothing of it: alone, the
/// rarer runs left could match thousands (`x 1` of `globex 1`, 10 ms against 3.9 under its
/// three runs). At least one run stays, the one the fewest rows hold (of equals, the last).
pub fn keyed_runs(runs: &[String], held: &[i32]) -> Vec<String> {
    if held.is_empty() {
        return runs.to_vec();
    }
    let bit = |at: usize| 1_i32 << at;
    let holding = |at: usize| held.iter().filter(|row| *row & bit(at) != 0).count();
    let mut tested: Vec<usize> = (0..runs.len().min(TESTED_RUNS)).collect();
    tested.sort_by_key(|&at| std::cmp::Reverse(holding(at)));
    let mut kept: Vec<bool> = vec![true; runs.len()];
    for at in tested {
        if holding(at) * 2 < held.len() || kept.iter().filter(|k| **k).count() == 1 {
            break;
        }
        let others = (0..runs.len().min(TESTED_RUNS))
            .filter(|&other| other != at && kept[other])
            .fold(0, |mask, other| mask | bit(other));
        let tells_apart = held
            .iter()
            .any(|row| row & others == others && row & bit(at) == 0);
        if !tells_apart {
            kept[at] = false;
        }
    }
    runs.iter()
        .zip(kept)
        .filter(|(_, kept)| *kept)
        .map(|(run, _)| run.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{keyed_runs, of_fragment, TESTED_RUNS};

    #[test]
    fn a_fragment_is_covered_by_its_runs_of_three_lowercased() {
        assert_eq!(of_fragment("1234567"), ["123", "456", "567"]);
        assert_eq!(of_fragment("123456"), ["123", "456"]);
        assert_eq!(of_fragment("AcMe"), ["acm", "cme"]);
        assert_eq!(of_fragment("aaaa"), ["aaa"]);
        assert!(of_fragment("ab").is_empty());
    }

    #[test]
    fn runs_cross_blanks_and_signs() {
        assert_eq!(of_fragment("Globex 1"), ["bex", "glo", "x 1"]);
        assert_eq!(of_fragment("+1200"), ["+12", "200"]);
        assert_eq!(of_fragment("x@ex"), ["@ex", "x@e"]);
    }

    #[test]
    fn a_run_with_a_character_outside_ascii_is_left_out() {
        assert_eq!(of_fragment("Émile"), ["ile", "mil"]);
        assert_eq!(of_fragment("joão silva"), ["ilv", "lva", "o s"]);
        assert_eq!(of_fragment("abcdé fgh"), [" fg", "abc", "bcd", "fgh"]);
        assert!(of_fragment("東京都").is_empty());
    }

    fn runs(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_run_nearly_every_row_holds_is_left_out_when_it_tells_no_row_apart() {
        // "Contact 019112": every row holds con, t 0 and tac; two rows hold 112, one 191.
        let name = runs(&["112", "191", "con", "t 0", "tac"]);
        let mut held = vec![0b11100_i32; 200];
        held[0] |= 0b00001;
        held[1] |= 0b00011;
        assert_eq!(keyed_runs(&name, &held), ["112", "191"]);

        // Half hold "con", and one row that does not holds the others.
        let mut held = vec![0_i32; 200];
        for row in held.iter_mut().take(100) {
            *row = 0b00100;
        }
        held[199] = 0b11011;
        assert_eq!(keyed_runs(&name, &held), name, "con tells a row apart");
        held[199] = 0b11111;
        assert_eq!(keyed_runs(&name, &held), ["112", "191", "t 0", "tac"]);
        let only_con = |rows: usize| -> Vec<i32> {
            (0..200)
                .map(|n| if n < rows { 0b00100 } else { 0 })
                .collect()
        };
        assert_eq!(
            keyed_runs(&name, &only_con(100)),
            ["112", "191", "t 0", "tac"],
            "100 of 200 hold con"
        );
        assert_eq!(
            keyed_runs(&name, &only_con(99)),
            name,
            "99 of 200 is under half"
        );
    }

    #[test]
    fn a_rarer_run_stays_and_so_does_one_run_at_least() {
        // "acme 9": a third hold "acm", none "e 9" without it: both stay.
        let acme = runs(&["acm", "e 9"]);
        let held: Vec<i32> = (0..200)
            .map(|n| if n % 3 == 0 { 0b01 } else { 0 })
            .collect();
        assert_eq!(keyed_runs(&acme, &held), acme);
        // Every row holds every run: the one the fewest hold stays (the last of equals).
        assert_eq!(keyed_runs(&acme, &[0b11; 200]), ["e 9"]);
        assert_eq!(keyed_runs(&acme, &[0b11, 0b11, 0b11, 0b01]), ["e 9"]);
        assert_eq!(keyed_runs(&acme, &[0b11, 0b11, 0b11, 0b10]), ["acm"]);
        assert_eq!(keyed_runs(&acme, &[]), acme, "no rows tell nothing");
    }

    #[test]
    fn runs_past_the_tested_ones_stay() {
        let many: Vec<String> = (0..TESTED_RUNS + 2).map(|n| format!("{n:03}")).collect();
        let every_tested = (1_i32 << TESTED_RUNS) - 1;
        let kept = keyed_runs(&many, &[every_tested; 8]);
        assert_eq!(kept, many[TESTED_RUNS..], "untested runs are not dropped");
    }
}
