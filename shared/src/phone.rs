//! Phone numbers in one form: E.164, parsed with the tenant's default region for numbers
//! written without a country code.

use phonenumber::{country, Mode};

/// The E.164 form of `raw`, or None when it is not a valid phone number.
pub fn normalize(raw: &str, default_region: country::Id) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 40 {
        return None;
    }
    let number = phonenumber::parse(Some(default_region), trimmed).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_common_spellings() {
        let us = country::Id::US;
        assert_eq!(
            normalize("+1 (415) 555-2671", us).as_deref(),
            Some("+14155552671")
        );
        assert_eq!(
            normalize("415.555.2671", us).as_deref(),
            Some("+14155552671")
        );
        assert_eq!(
            normalize("020 7946 0018", country::Id::GB).as_deref(),
            Some("+442079460018")
        );
        assert_eq!(
            normalize("+44 20 7946 0018", us).as_deref(),
            Some("+442079460018")
        );
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "",
            "abc",
            "123",
            "+1 555",
            "=HYPERLINK(\"x\")",
            &"9".repeat(50),
        ] {
            assert_eq!(normalize(bad, country::Id::US), None, "{bad:?}");
        }
    }
}
