//! Reads an uploaded contact file (.csv, .xlsx, .xls, .ods) into validated contacts, the rows
//! that repeat a phone number already seen in the file, and the rows that cannot be imported.
//! Pure: no database, no HTTP; the upload endpoint calls [`parse`] and checks stored contacts.
//!
//! What callers can rely on:
//! - The format comes from the file's content (magic bytes); the extension must be one of
//!   [`ACCEPTED_EXTENSIONS`]. A workbook saved under another workbook extension (an .xlsx named
//!   .xls) or under .csv is read by content; plain text under a workbook extension is refused,
//!   because it is usually an HTML or CSV export and the user should know what they uploaded.
//! - The header row is searched in the first [`HEADER_SEARCH_ROWS`] non-blank rows; rows above
//!   it are ignored. In a workbook, the first visible worksheet with any data is read.
//! - `row` in every report is the row number a spreadsheet app shows (1-based; the header,
//!   title rows and blank rows count). A CSV record that spans lines (a quoted newline) is one row.
//! - A row is blank, skipped and not counted when all of its recognized columns are empty.
//! - Every counted row lands in exactly one of `contacts`, `duplicates`, `invalid`.
//! - Text is trimmed; NUL and other control characters except tab and newline are removed
//!   (they are invisible, usually pasted by accident, and Postgres text cannot hold NUL); name,
//!   phone, email and company become one line with single spaces; notes keep their line breaks.
//! - Phone numbers are stored in E.164 ([`crate::phone::normalize`]); duplicates are found on
//!   that form, so "+1 415-555-2671" and "(415) 555 2671" are the same contact.
//! - Text that looks like a formula (`=1+2`) is kept verbatim; exports must go through
//!   [`crate::spreadsheet::neutralize_formula`].

mod fields;
mod format;
mod guard;
mod header;
mod text;
mod workbook;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{error::AppError, settings::Settings};

pub use format::ACCEPTED_EXTENSIONS;
pub use header::HEADER_SEARCH_ROWS;

/// Limits for one upload; see [`ImportLimits::from_settings`].
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Most data rows (blank rows and the header excluded); more is `too_many_rows`.
    pub max_rows: usize,
    /// Largest file in bytes; more is `payload_too_large`.
    pub max_bytes: usize,
    /// Region for phone numbers written without a country code.
    pub default_region: phonenumber::country::Id,
}

impl ImportLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_rows: usize::try_from(settings.contact_import_max_rows).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(settings.contact_import_max_bytes).unwrap_or(usize::MAX),
            default_region: settings.phone_region(),
        }
    }
}

/// One valid contact, with the row it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedContact {
    pub row: usize,
    pub name: String,
    /// E.164.
    pub phone_number: String,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
}

/// A row whose phone number an earlier row of the same file already has (or, for the
/// endpoint, a stored contact has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DuplicateRow {
    pub row: usize,
    /// E.164.
    pub phone: String,
}

/// A row that cannot be imported; one entry per row, for its first problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvalidRow {
    pub row: usize,
    /// The contact field at fault: name, phone_number, email, company or notes.
    pub field: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedFile {
    /// Non-blank rows below the header: `contacts + duplicates + invalid`.
    pub total_rows: usize,
    pub contacts: Vec<ImportedContact>,
    pub duplicates: Vec<DuplicateRow>,
    pub invalid: Vec<InvalidRow>,
}

/// Reads `bytes`, uploaded as `file_name`. A file-level problem is an error and nothing is
/// imported: `unsupported_file_type` (415), `payload_too_large` and `too_many_rows` (413),
/// `corrupt_file`, `password_protected`, `empty_file`, `missing_header` (400). Row-level
/// problems are reported in the result.
pub fn parse(file_name: &str, bytes: &[u8], limits: &ImportLimits) -> Result<ParsedFile, AppError> {
    let declared = format::from_file_name(file_name)?;
    if bytes.len() > limits.max_bytes {
        return Err(payload_too_large(limits.max_bytes, bytes.len()));
    }
    let mut sink = RowSink::new(limits);
    match format::detect(declared, bytes, limits)? {
        format::Format::Csv => text::read(bytes, &mut sink)?,
        format::Format::Xlsx => workbook::read_xlsx(bytes, &mut sink)?,
        format::Format::Xls => workbook::read_xls(bytes, &mut sink)?,
        format::Format::Ods => workbook::read_ods(bytes, &mut sink)?,
    }
    sink.finish()
}

/// Cells longer than this (in bytes) are not copied: no field allows that much text.
const MAX_CELL_BYTES: usize = 16 * 1024;
/// Columns past this one are ignored.
const MAX_COLUMNS: usize = 1024;

/// One cell, reduced to what the import needs.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// A formula the file holds no computed value for (written by a program, never opened
    /// and saved in a spreadsheet app).
    Uncomputed,
    /// An error value such as `#N/A`.
    Error(String),
    TooLong,
}

impl Cell {
    fn text(raw: &str) -> Self {
        if raw.len() > MAX_CELL_BYTES {
            Cell::TooLong
        } else if raw.chars().all(|c| c.is_whitespace() || c.is_control()) {
            Cell::Empty
        } else {
            Cell::Text(raw.to_owned())
        }
    }
}

/// A row as the spreadsheet shows it: `number` is 1-based, `cells` start at column A.
#[derive(Debug, Clone, PartialEq)]
struct SheetRow {
    number: usize,
    cells: Vec<Cell>,
}

impl SheetRow {
    fn new(number: usize) -> Self {
        Self {
            number,
            cells: Vec::new(),
        }
    }

    fn cell(&self, column: usize) -> &Cell {
        self.cells.get(column).unwrap_or(&Cell::Empty)
    }

    /// Stores `cell` at `column`; cells past [`MAX_COLUMNS`] are dropped.
    fn set(&mut self, column: usize, cell: Cell) {
        if column >= MAX_COLUMNS || cell == Cell::Empty {
            return;
        }
        if self.cells.len() <= column {
            self.cells.resize(column + 1, Cell::Empty);
        }
        self.cells[column] = cell;
    }

    fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| *c == Cell::Empty)
    }
}

/// Receives rows in order, finds the header, then validates and deduplicates the data rows.
struct RowSink<'a> {
    limits: &'a ImportLimits,
    columns: Option<header::Columns>,
    rows_before_header: usize,
    phones: HashSet<String>,
    parsed: ParsedFile,
}

impl<'a> RowSink<'a> {
    fn new(limits: &'a ImportLimits) -> Self {
        Self {
            limits,
            columns: None,
            rows_before_header: 0,
            phones: HashSet::new(),
            parsed: ParsedFile::default(),
        }
    }

    /// Whether a non-blank row has arrived (a workbook moves on to its next sheet until one has).
    fn has_content(&self) -> bool {
        self.columns.is_some() || self.rows_before_header > 0
    }

    fn push(&mut self, row: SheetRow) -> Result<(), AppError> {
        let Some(columns) = &self.columns else {
            return self.look_for_header(&row);
        };
        if columns.all_empty(&row) {
            return Ok(());
        }
        self.parsed.total_rows += 1;
        // Past the limit, rows are only counted, so the error can say how many there are.
        if self.parsed.total_rows <= self.limits.max_rows {
            let read = fields::read_contact(&row, columns, self.limits.default_region);
            self.record(read);
        }
        Ok(())
    }

    fn look_for_header(&mut self, row: &SheetRow) -> Result<(), AppError> {
        if row.is_blank() {
            return Ok(());
        }
        match header::find(row) {
            Some(columns) => self.columns = Some(columns),
            None => {
                self.rows_before_header += 1;
                if self.rows_before_header >= HEADER_SEARCH_ROWS {
                    return Err(missing_header());
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, read: Result<ImportedContact, InvalidRow>) {
        match read {
            Err(invalid) => self.parsed.invalid.push(invalid),
            Ok(contact) if !self.phones.insert(contact.phone_number.clone()) => {
                self.parsed.duplicates.push(DuplicateRow {
                    row: contact.row,
                    phone: contact.phone_number,
                });
            }
            Ok(contact) => self.parsed.contacts.push(contact),
        }
    }

    fn finish(self) -> Result<ParsedFile, AppError> {
        if !self.has_content() {
            return Err(empty_file("the file has no data"));
        }
        if self.columns.is_none() {
            return Err(missing_header());
        }
        let parsed = self.parsed;
        if parsed.total_rows == 0 {
            return Err(empty_file(
                "the file has a header row but no contacts below it",
            ));
        }
        if parsed.total_rows > self.limits.max_rows {
            return Err(AppError::too_large(
                "too_many_rows",
                format!(
                    "the file has {} contact rows; at most {} can be imported at once",
                    parsed.total_rows, self.limits.max_rows
                ),
            )
            .with_details(
                json!({ "max_rows": self.limits.max_rows, "found": parsed.total_rows }),
            ));
        }
        Ok(parsed)
    }
}

fn payload_too_large(max_bytes: usize, found: usize) -> AppError {
    AppError::too_large(
        "payload_too_large",
        format!("the file is larger than {max_bytes} bytes"),
    )
    .with_details(json!({ "max_bytes": max_bytes, "found": found }))
}

fn unsupported(message: impl Into<String>) -> AppError {
    AppError::unsupported_media_type("unsupported_file_type", message.into())
        .with_details(json!({ "accepted": ACCEPTED_EXTENSIONS }))
}

fn corrupt(message: impl Into<String>, reason: impl std::fmt::Display) -> AppError {
    AppError::bad_request("corrupt_file", message.into())
        .with_details(json!({ "reason": reason.to_string() }))
}

fn password_protected() -> AppError {
    AppError::bad_request(
        "password_protected",
        "the workbook is password-protected; remove the password and upload it again",
    )
}

fn empty_file(message: &'static str) -> AppError {
    AppError::bad_request("empty_file", message)
}

fn missing_header() -> AppError {
    AppError::bad_request(
        "missing_header",
        format!(
            "no header row with a name and a phone column in the first {HEADER_SEARCH_ROWS} \
             non-empty rows"
        ),
    )
    .with_details(header::expected_columns())
}
