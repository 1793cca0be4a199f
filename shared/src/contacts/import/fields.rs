//! One data row -> one contact, or the first reason it cannot be one.

use std::borrow::Cow;

use phonenumber::country;

use super::{header::Columns, Cell, ImportedContact, InvalidRow, SheetRow};
use crate::phone;

// The same limits as a contact created through the API.
const NAME_MAX_CHARS: usize = crate::contacts::MAX_NAME_CHARS;
const EMAIL_MAX_CHARS: usize = crate::text::MAX_EMAIL_CHARS;
const COMPANY_MAX_CHARS: usize = crate::contacts::MAX_COMPANY_CHARS;
const NOTES_MAX_CHARS: usize = crate::contacts::MAX_NOTES_CHARS;
/// What [`phone::normalize`] looks at.
const PHONE_MAX_CHARS: usize = 40;

const UNCOMPUTED: &str = "the cell holds a formula without a computed value; open the file in a \
                          spreadsheet app, save it and upload it again";

type FieldResult<T> = Result<T, String>;

pub(super) fn read_contact(
    row: &SheetRow,
    columns: &Columns,
    region: country::Id,
) -> Result<ImportedContact, InvalidRow> {
    let invalid = |field: &'static str| {
        move |reason: String| InvalidRow {
            row: row.number,
            field,
            reason,
        }
    };
    let optional = |column: Option<usize>| column.map_or(&Cell::Empty, |c| row.cell(c));
    Ok(ImportedContact {
        row: row.number,
        name: read_name(row, columns).map_err(invalid("name"))?,
        phone_number: read_phone(row.cell(columns.phone), region)
            .map_err(invalid("phone_number"))?,
        email: read_email(optional(columns.email)).map_err(invalid("email"))?,
        company: one_line(optional(columns.company), COMPANY_MAX_CHARS)
            .map_err(invalid("company"))?,
        notes: multi_line(optional(columns.notes), NOTES_MAX_CHARS).map_err(invalid("notes"))?,
    })
}

/// The name column, or else first and last name joined.
fn read_name(row: &SheetRow, columns: &Columns) -> FieldResult<String> {
    let part = |column: Option<usize>| match column {
        Some(c) => one_line(row.cell(c), NAME_MAX_CHARS),
        None => Ok(None),
    };
    if let Some(name) = part(columns.name)? {
        return Ok(name);
    }
    let joined = [part(columns.first_name)?, part(columns.last_name)?]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if joined.is_empty() {
        return Err("a name is required".into());
    }
    check_length(joined, NAME_MAX_CHARS)
}

fn read_email(cell: &Cell) -> FieldResult<Option<String>> {
    let Some(email) = one_line(cell, EMAIL_MAX_CHARS)? else {
        return Ok(None);
    };
    if !crate::text::is_email(&email) {
        return Err(format!("{} is not a valid email address", shown(&email)));
    }
    Ok(Some(email))
}

fn read_phone(cell: &Cell, region: country::Id) -> FieldResult<String> {
    let raw = match cell {
        Cell::Empty => return Err("a phone number is required".into()),
        Cell::Number(number) => return phone_from_number(*number, region),
        Cell::Text(text) => text,
        other => return Err(cell_problem(other, PHONE_MAX_CHARS)),
    };
    let cleaned = remove_controls(raw);
    // A leading apostrophe is how spreadsheet users force text; some exports keep it.
    let text = cleaned.trim().trim_start_matches('\'').trim();
    if text.is_empty() {
        return Err("a phone number is required".into());
    }
    let digits = match exported_number(text) {
        Some(exported) => Cow::Owned(exported?),
        None => Cow::Borrowed(text),
    };
    phone::normalize(&digits, region).ok_or_else(|| not_a_phone(text, region))
}

/// A phone typed into a spreadsheet as a number: its digits. Spreadsheets drop a leading `+`,
/// so a number that is not valid in `region` is tried as international.
fn phone_from_number(number: f64, region: country::Id) -> FieldResult<String> {
    // E.164 numbers have at most 15 digits, all exact in an f64.
    if number.fract() != 0.0 || !(1.0..1e15).contains(&number) {
        return Err(not_a_phone(&number.to_string(), region));
    }
    let digits = format!("{number:.0}");
    phone::normalize(&digits, region)
        .or_else(|| phone::normalize(&format!("+{digits}"), region))
        .ok_or_else(|| not_a_phone(&digits, region))
}

/// Digits of a number that went through a spreadsheet or a data tool as text:
/// `4155552671.0` or `1.4155552671E+10`. None when `text` is not such a number; an error when
/// the exponent form has fewer digits than the number (Excel shortened it, digits are lost).
fn exported_number(text: &str) -> Option<FieldResult<String>> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<usize>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if fraction.len() < exponent {
        return Some(Err(format!(
            "{text} is a number shortened to scientific notation, so digits are missing; \
             format the phone column as text and export the file again"
        )));
    }
    let (shifted, rest) = fraction.split_at(exponent);
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(Ok(format!("{whole}{shifted}")))
}

fn not_a_phone(raw: &str, region: country::Id) -> String {
    format!(
        "{} is not a valid phone number (numbers without a +country code are read as {region:?} \
         numbers)",
        shown(raw)
    )
}

/// Text for a single-line field: controls removed, whitespace runs made one space.
fn one_line(cell: &Cell, max_chars: usize) -> FieldResult<Option<String>> {
    let Some(raw) = cell_text(cell, max_chars)? else {
        return Ok(None);
    };
    let text = remove_controls(&raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    optional(text, max_chars)
}

/// Text for notes: controls removed, line breaks kept as `\n`, ends trimmed.
fn multi_line(cell: &Cell, max_chars: usize) -> FieldResult<Option<String>> {
    let Some(raw) = cell_text(cell, max_chars)? else {
        return Ok(None);
    };
    let text = remove_controls(&raw.replace("\r\n", "\n").replace('\r', "\n"))
        .trim()
        .to_owned();
    optional(text, max_chars)
}

fn optional(text: String, max_chars: usize) -> FieldResult<Option<String>> {
    if text.is_empty() {
        return Ok(None);
    }
    check_length(text, max_chars).map(Some)
}

fn check_length(text: String, max_chars: usize) -> FieldResult<String> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(format!(
            "is {chars} characters long; at most {max_chars} are allowed"
        ));
    }
    Ok(text)
}

fn cell_text(cell: &Cell, max_chars: usize) -> FieldResult<Option<Cow<'_, str>>> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(text) => Ok(Some(Cow::Borrowed(text))),
        Cell::Number(number) => Ok(Some(Cow::Owned(number_text(*number)))),
        other => Err(cell_problem(other, max_chars)),
    }
}

fn cell_problem(cell: &Cell, max_chars: usize) -> String {
    match cell {
        Cell::Uncomputed => UNCOMPUTED.into(),
        Cell::Error(error) => format!("the cell shows the error {error}"),
        Cell::TooLong => format!("is longer than {max_chars} characters"),
        Cell::Empty | Cell::Text(_) | Cell::Number(_) => "unreadable cell".into(),
    }
}

/// Whole numbers without `.0`; others in Rust's shortest round-trip form.
pub(super) fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

/// Without the characters the API refuses in multi-line text (`text::is_unwanted`: C1 too,
/// which a cell decoded as Windows-1252 can hold, and invisible formatting), so that an
/// imported contact can be edited through the API as it is. Line breaks and tabs are left
/// for the caller.
fn remove_controls(text: &str) -> Cow<'_, str> {
    let unwanted = |c: char| crate::text::is_unwanted(c, true);
    if text.contains(unwanted) {
        Cow::Owned(text.chars().filter(|c| !unwanted(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `value` quoted for a reason, cut to a readable length.
fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_numbers_become_digits() {
        let ok = |text: &str| exported_number(text).map(|r| r.expect("exact"));
        assert_eq!(ok("4155552671.0").as_deref(), Some("4155552671"));
        assert_eq!(ok("4155552671.000").as_deref(), Some("4155552671"));
        assert_eq!(ok("1.4155552671E10").as_deref(), Some("14155552671"));
        assert_eq!(ok("1.4155552671e+10").as_deref(), Some("14155552671"));
        assert_eq!(ok("1.41555526710E10").as_deref(), Some("14155552671"));
        for not_exported in [
            "4155552671",
            "+1 415.555.2671",
            "415.555.2671",
            "4155552671.5",
            "x.0",
            ".5",
        ] {
            assert_eq!(exported_number(not_exported), None, "{not_exported}");
        }
        assert!(exported_number("1.41556E+10").expect("recognized").is_err());
    }

    #[test]
    fn numbers_print_without_a_fraction_when_whole() {
        assert_eq!(number_text(4155552671.0), "4155552671");
        assert_eq!(number_text(-3.0), "-3");
        assert_eq!(number_text(2.5), "2.5");
        assert_eq!(number_text(1e20), "100000000000000000000");
    }

    #[test]
    fn email_rule() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "zoë@exämple.de"] {
            assert!(crate::text::is_email(good), "{good}");
        }
        for bad in [
            "", "a", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a b@c.co", "a@.b.co", "a@b.co.",
            "a@b..co",
        ] {
            assert!(!crate::text::is_email(bad), "{bad}");
        }
    }

    #[test]
    fn controls_are_removed_but_tab_and_newlines_kept() {
        assert_eq!(remove_controls("a\u{0}b\u{7}c\u{7f}"), "abc");
        assert_eq!(remove_controls("a\tb\nc\rd"), "a\tb\nc\rd");
        assert!(matches!(remove_controls("plain"), Cow::Borrowed(_)));
    }
}
