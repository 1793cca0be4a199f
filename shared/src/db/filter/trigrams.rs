//! The trigrams every text containing a fragment holds: its runs of three characters,
//! lowercased, as `lower_trigrams` (V0024) lists a text's for the search indexes.

/// The runs of three characters that every text containing `fragment` holds, case aside: the
/// fragment's own, lowercased, those whose three characters are ASCII. `ILIKE` compares the
/// `lower()` of both sides, and the index lists the runs of the text's; outside ASCII a locale
/// may lower a character to something else than Rust does, and a run left out only widens the
/// lookup, which the `ILIKE` beside it narrows again. Runs across a blank or a sign count as
/// any other (`"x 1"` in `"globex 1"`): pg_trgm's trigrams stop at words, so its keys for
/// `"globex 1"` asked only for a word starting with 1, which most numbers hold.
pub fn of_fragment(fragment: &str) -> Vec<String> {
    let characters: Vec<char> = fragment.chars().collect();
    let mut trigrams: Vec<String> = characters
        .windows(3)
        .filter(|run| run.iter().all(char::is_ascii))
        .map(|run| run.iter().map(char::to_ascii_lowercase).collect())
        .collect();
    trigrams.sort();
    trigrams.dedup();
    trigrams
}

#[cfg(test)]
mod tests {
    use super::of_fragment;

    #[test]
    fn a_fragment_holds_its_runs_of_three_lowercased() {
        assert_eq!(of_fragment("1234567"), ["123", "234", "345", "456", "567"]);
        assert_eq!(of_fragment("AcMe"), ["acm", "cme"]);
        assert_eq!(of_fragment("aaaa"), ["aaa"]);
        assert!(of_fragment("ab").is_empty());
    }

    #[test]
    fn runs_cross_blanks_and_signs() {
        assert_eq!(
            of_fragment("Globex 1"),
            ["bex", "ex ", "glo", "lob", "obe", "x 1"]
        );
        assert_eq!(of_fragment("+1200"), ["+12", "120", "200"]);
        assert_eq!(of_fragment("x@ex"), ["@ex", "x@e"]);
    }

    #[test]
    fn a_run_with_a_character_outside_ascii_is_left_out() {
        assert_eq!(of_fragment("Émile"), ["ile", "mil"]);
        assert_eq!(
            of_fragment("joão silva"),
            [" si", "ilv", "lva", "o s", "sil"]
        );
        assert!(of_fragment("東京都").is_empty());
    }
}
