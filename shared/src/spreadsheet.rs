//! Helpers for data that will be opened in a spreadsheet application.

use std::borrow::Cow;

/// The cell text to write into a CSV export so that a spreadsheet does not run it as a formula
/// (CSV injection, OWASP): a cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a
/// leading single quote, which spreadsheets read as "this is text". Every other cell is returned
/// unchanged. Stored data keeps its original text; only exports go through this.
///
/// A phone number in E.164 form starts with `+`, so it is exported as `'+14155552671`.
pub fn neutralize_formula(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_a_formula_get_a_quote() {
        for cell in [
            "=1+2",
            "=HYPERLINK(\"http://x\",\"y\")",
            "+14155552671",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(neutralize_formula(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn other_cells_are_borrowed_unchanged() {
        for cell in ["", "Ada", "1-2", "a@b.co", "'=1", "Zoë 🎉"] {
            let out = neutralize_formula(cell);
            assert!(matches!(out, Cow::Borrowed(_)), "{cell:?}");
            assert_eq!(out, cell);
        }
    }
}
