//! The trigrams every text containing a fragment holds, as pg_trgm's `show_trgm` spells them:
//! the keys a search looks up in a tenant's trigram index (V0023).

/// What lies beside a run of word characters in the fragment: a character that ends a word in
/// any locale (ASCII, not a letter or digit), or something that may continue it (the
/// fragment's open end, a character outside ASCII, which some locales count as a letter).
#[derive(Clone, Copy, PartialEq)]
enum Beside {
    WordEnd,
    Unknown,
}

/// The trigrams that `show_trgm` finds in every text containing `fragment`, case aside. It
/// lowercases the text and pads each of its words (runs of letters and digits) with two
/// blanks before and one after; a word of the fragment is the text's whole word only on a side
/// where a separator stands in the fragment. Leaving out a trigram the text holds only widens
/// the lookup, which the `ILIKE` beside it narrows again; so a word beside a character outside
/// ASCII, which a locale may count as a letter, gets no padding there, and such characters
/// are in no trigram.
pub fn of_fragment(fragment: &str) -> Vec<String> {
    let mut trigrams = Vec::new();
    let mut word = String::new();
    let mut before = Beside::Unknown;
    for c in fragment.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
            continue;
        }
        let after = if c.is_ascii() {
            Beside::WordEnd
        } else {
            Beside::Unknown
        };
        padded_windows(&word, before, after, &mut trigrams);
        word.clear();
        before = after;
    }
    padded_windows(&word, before, Beside::Unknown, &mut trigrams);
    trigrams.sort();
    trigrams.dedup();
    trigrams
}

/// Adds the three-character windows of `word`, padded where it is known to start or end.
fn padded_windows(word: &str, before: Beside, after: Beside, into: &mut Vec<String>) {
    if word.is_empty() {
        return;
    }
    let mut padded = String::with_capacity(word.len() + 3);
    if before == Beside::WordEnd {
        padded.push_str("  ");
    }
    padded.push_str(word);
    if after == Beside::WordEnd {
        padded.push(' ');
    }
    // ASCII alone: one byte per character.
    into.extend(
        padded
            .as_bytes()
            .windows(3)
            .map(|window| String::from_utf8_lossy(window).into_owned()),
    );
}

#[cfg(test)]
mod tests {
    use super::of_fragment;

    #[test]
    fn an_open_fragment_holds_its_inner_trigrams() {
        assert_eq!(of_fragment("1234567"), ["123", "234", "345", "456", "567"]);
        assert_eq!(of_fragment("AcMe"), ["acm", "cme"]);
        assert!(of_fragment("ab").is_empty());
    }

    #[test]
    fn a_separator_pads_the_words_beside_it() {
        assert_eq!(
            of_fragment("Contact 02"),
            ["  0", " 02", "act", "con", "ct ", "nta", "ont", "tac"]
        );
        assert_eq!(of_fragment("+1200"), ["  1", " 12", "120", "200"]);
        assert_eq!(of_fragment(" a "), ["  a", " a "]);
        assert_eq!(of_fragment("x@ex"), ["  e", " ex"]);
    }

    #[test]
    fn characters_outside_ascii_are_in_no_trigram_and_pad_nothing() {
        assert_eq!(of_fragment("Émile"), ["ile", "mil"]);
        assert_eq!(
            of_fragment("joão silva"),
            ["  s", " si", "ilv", "lva", "sil"]
        );
        assert!(of_fragment("東京都").is_empty());
    }
}
