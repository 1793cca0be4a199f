//! Phone numbers in one form: E.164, parsed with the tenant's default region for numbers
//! written without a country code.

use phonenumber::{country, Mode, Type};

/// The E.164 form of `raw`, or None when it is not a valid phone number.
pub fn normalize(raw: &str, default_region: country::Id) -> Option<String> {
    let number = parse(raw, default_region)?;
    phonenumber::is_valid(&number).then(|| number.format().mode(Mode::E164).to_string())
}

/// The E.164 form `raw` is written in, valid or not: enough to find a number stored by
/// [`normalize`] at a fraction of its cost, since validating a +1 number tries it against
/// every region that shares the country code.
pub fn e164(raw: &str, default_region: country::Id) -> Option<String> {
    parse(raw, default_region).map(|number| number.format().mode(Mode::E164).to_string())
}

fn parse(raw: &str, default_region: country::Id) -> Option<phonenumber::PhoneNumber> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 40 {
        return None;
    }
    phonenumber::parse(Some(default_region), trimmed).ok()
}

/// The number types libphonenumber tells apart, as settings and errors spell them.
pub const NUMBER_TYPES: &[&str] = &[
    "fixed_line",
    "mobile",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "emergency",
    "voicemail",
    "short_code",
    "standard_rate",
    "carrier",
    "no_international",
    "unknown",
];

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::FixedLine => "fixed_line",
        Type::Mobile => "mobile",
        Type::FixedLineOrMobile => "fixed_line_or_mobile",
        Type::TollFree => "toll_free",
        Type::PremiumRate => "premium_rate",
        Type::SharedCost => "shared_cost",
        Type::PersonalNumber => "personal_number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short_code",
        Type::StandardRate => "standard_rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "no_international",
        Type::Unknown => "unknown",
    }
}

/// Where a call to a number goes, as libphonenumber's metadata tells: the country (ISO 3166
/// alpha-2, when the number belongs to one) and the number type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Destination {
    pub country: Option<String>,
    pub number_type: &'static str,
}

pub fn destination(e164: &str) -> Destination {
    match phonenumber::parse(None, e164) {
        Ok(number) => Destination {
            country: number.country().id().map(|id| id.as_ref().to_owned()),
            number_type: type_name(number.number_type(&phonenumber::metadata::DATABASE)),
        },
        Err(_) => Destination {
            country: None,
            number_type: "unknown",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_name_the_country_and_the_number_type() {
        let us = destination("+14155552671");
        assert_eq!(us.country.as_deref(), Some("US"));
        assert_eq!(us.number_type, "fixed_line_or_mobile");
        // Examples from libphonenumber's metadata: UK premium rate, French shared cost.
        assert_eq!(destination("+449012345678").number_type, "premium_rate");
        assert_eq!(destination("+33884012345").number_type, "shared_cost");
        assert_eq!(destination("+33884012345").country.as_deref(), Some("FR"));
        assert_eq!(destination("+447400123456").number_type, "mobile");
        assert_eq!(destination("garbage").number_type, "unknown");
        for kind in NUMBER_TYPES {
            assert_eq!(kind.to_lowercase(), *kind);
        }
    }

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
    fn the_written_form_is_the_normalized_one_for_valid_numbers_only() {
        let us = country::Id::US;
        for raw in [
            "+1 (415) 555-2671",
            "415.555.2671",
            "+39 06 6982 1234",
            "+44 20 7946 0018",
        ] {
            let written = e164(raw, us).expect(raw);
            assert_eq!(normalize(raw, us), Some(written.clone()), "{raw}");
            assert_eq!(normalize(&written, us), Some(written), "{raw}");
        }
        // Parses, but no number is ever assigned the area code 200.
        assert_eq!(e164("+1 200 555 0100", us).as_deref(), Some("+12005550100"));
        assert_eq!(normalize("+1 200 555 0100", us), None);
        for bad in ["", "anonymous", &"9".repeat(50)] {
            assert_eq!(e164(bad, us), None, "{bad:?}");
        }
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
