//! Free text from users, checked once at the edge: trimmed, bounded, and free of control
//! characters (Postgres refuses NUL; the rest only break logs, CSVs and UIs).

use crate::error::{AppError, AppResult};

/// A required single-line value (a name): trimmed, 1..=`max_chars`, no control characters.
pub fn line(field: &str, raw: &str, max_chars: usize) -> AppResult<String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(AppError::validation(field, "must not be empty"));
    }
    check(field, value, max_chars, false)?;
    Ok(value.to_owned())
}

/// An optional multi-line value (a prompt, notes): trimmed; empty becomes None; newlines and
/// tabs are kept, other control characters are refused.
pub fn optional_block(
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
) -> AppResult<Option<String>> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    check(field, value, max_chars, true)?;
    Ok(Some(value.to_owned()))
}

/// An optional single-line value: like [`line`], but empty becomes None.
pub fn optional_line(
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
) -> AppResult<Option<String>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => line(field, value, max_chars).map(Some),
    }
}

pub const MAX_EMAIL_CHARS: usize = 254;

/// An optional email address, kept as typed: see [`is_email`].
pub fn optional_email(field: &str, raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(email) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if email.chars().count() > MAX_EMAIL_CHARS || !is_email(email) {
        return Err(AppError::validation(field, "is not an email address"));
    }
    Ok(Some(email.to_owned()))
}

/// One `@`, a local part, a dotted domain, no spaces or control characters. Deliberately
/// simple; deliverability is not ours to judge.
pub fn is_email(email: &str) -> bool {
    !email
        .chars()
        .any(|c| c.is_whitespace() || is_unwanted(c, false))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|part| !part.is_empty())
        })
}

fn check(field: &str, value: &str, max_chars: usize, multiline: bool) -> AppResult<()> {
    if value.chars().count() > max_chars {
        return Err(AppError::validation(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| is_unwanted(c, multiline)) {
        return Err(AppError::validation(
            field,
            "must not contain control or invisible formatting characters",
        ));
    }
    Ok(())
}

/// A character no text of ours keeps: controls (but newlines and tabs in multi-line text),
/// and the invisible ones that reorder or hide what is shown (bidirectional overrides,
/// zero-width characters, the byte-order mark) or break a line where none may be.
pub fn is_unwanted(c: char, multiline: bool) -> bool {
    let kept = multiline && matches!(c, '\n' | '\r' | '\t');
    let invisible = matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}');
    let breaks_line = matches!(c, '\u{2028}' | '\u{2029}');
    (c.is_control() && !kept) || invisible || (breaks_line && !multiline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_refused_line_breaks_only_in_blocks() {
        for sneaky in [
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{FEFF}ab",
            "a\u{2066}b",
            "a\u{00AD}b",
        ] {
            assert!(line("name", sneaky, 50).is_err(), "{sneaky:?}");
            assert!(
                optional_block("notes", Some(sneaky), 50).is_err(),
                "{sneaky:?}"
            );
        }
        assert!(line("name", "a\u{2028}b", 50).is_err());
        assert!(optional_block("notes", Some("a\u{2028}b\nc"), 50).is_ok());
        assert!(line("name", "Zoë O'Brien-Łukasz 李", 50).is_ok());
        assert!(!is_email("a\u{200B}@example.com"));
    }

    #[test]
    fn lines_are_trimmed_bounded_and_clean() {
        assert_eq!(line("name", "  Ada  ", 10).expect("ok"), "Ada");
        assert_eq!(line("name", "Zoë 🚀", 10).expect("unicode"), "Zoë 🚀");
        for bad in ["", "   ", "a\u{0}b", "a\nb", &"x".repeat(11)] {
            let err = line("name", bad, 10).expect_err(bad);
            assert_eq!(err.code, "validation_error");
            assert_eq!(err.details.expect("details")["field"], "name");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            optional_email("email", Some(" Ada@Example.COM "))
                .expect("ok")
                .as_deref(),
            Some("Ada@Example.COM")
        );
        assert_eq!(optional_email("email", Some("")).expect("ok"), None);
        for bad in [
            "ada",
            "@x.com",
            "ada@",
            "ada@x",
            "a b@x.com",
            "a@b@c.com",
            "ada@x..com",
        ] {
            assert!(optional_email("email", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_keep_newlines_but_not_nul() {
        assert_eq!(
            optional_block("notes", Some(" a\nb\tc "), 20).expect("ok"),
            Some("a\nb\tc".into())
        );
        assert_eq!(optional_block("notes", Some("  "), 20).expect("ok"), None);
        assert_eq!(optional_block("notes", None, 20).expect("ok"), None);
        assert!(optional_block("notes", Some("a\u{0}"), 20).is_err());
        assert!(optional_block("notes", Some("a\u{1b}[31m"), 20).is_err());
    }
}
