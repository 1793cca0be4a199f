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

#[cfg(test)]
mod tests {
    use super::of_fragment;

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
}
