//! CSV: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), otherwise
//! Windows-1252; the delimiter is `,`, `;` or tab, whichever yields a header row (then the most
//! regular columns); rows may have different lengths; quoted fields may hold newlines.

use std::borrow::Cow;

use encoding_rs::{Encoding, WINDOWS_1252};

use super::{corrupt, header, Cell, RowSink, SheetRow, HEADER_SEARCH_ROWS};
use crate::error::AppError;

const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];
/// Rows compared when choosing the delimiter.
const SNIFF_ROWS: usize = 20;
/// Bytes looked at to tell text from binary.
const SNIFF_BYTES: usize = 8 * 1024;

pub(super) fn read(bytes: &[u8], sink: &mut RowSink<'_>) -> Result<(), AppError> {
    let text = decode(bytes);
    let delimiter = sniff_delimiter(&text);
    for row in rows(&text, delimiter) {
        sink.push(row?)?;
    }
    Ok(())
}

/// Whether `bytes` (not a zip or OLE file) is something other than text: a known binary
/// signature, or control characters making up more than 5% of the start (text has almost none;
/// a stray NUL in a CSV cell is tolerated and removed later).
pub(super) fn looks_binary(bytes: &[u8]) -> bool {
    if Encoding::for_bom(bytes).is_some() {
        return false;
    }
    if BINARY_SIGNATURES.iter().any(|s| bytes.starts_with(s)) {
        return true;
    }
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let controls = sample
        .iter()
        .filter(|b| b.is_ascii_control() && !matches!(b, b'\t' | b'\n' | b'\r' | b'\x0c'))
        .count();
    controls * 20 > sample.len()
}

/// PNG, JPEG, GIF, PDF, gzip.
const BINARY_SIGNATURES: [&[u8]; 5] = [b"\x89PNG", b"\xFF\xD8\xFF", b"GIF8", b"%PDF-", b"\x1F\x8B"];

fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        return encoding.decode_without_bom_handling(&bytes[bom_length..]).0;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// The delimiter under which a header row appears; among those (or among all, when none has
/// one) the one giving most rows the same number of fields, the first on ties.
fn sniff_delimiter(text: &str) -> u8 {
    let mut best = (DELIMITERS[0], (false, 0));
    for delimiter in DELIMITERS {
        let sample: Vec<SheetRow> = rows(text, delimiter)
            .map_while(Result::ok)
            .filter(|row| !row.is_blank())
            .take(SNIFF_ROWS)
            .collect();
        let has_header = sample
            .iter()
            .take(HEADER_SEARCH_ROWS)
            .any(|row| header::find(row).is_some());
        let score = (has_header, regular_rows(&sample));
        if score > best.1 {
            best = (delimiter, score);
        }
    }
    best.0
}

/// How many rows share the most common width (up to the last non-empty field), when that
/// width is above one.
fn regular_rows(rows: &[SheetRow]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for row in rows {
        *counts.entry(row.cells.len()).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .filter(|(fields, _)| *fields > 1)
        .map(|(_, rows)| rows)
        .max()
        .unwrap_or(0)
}

/// The records of `text` as spreadsheet rows. A record's row number counts the line breaks
/// before it (CRLF, CR or LF), less those inside quoted fields (a spreadsheet shows them inside
/// one cell). Blank lines, which the CSV reader skips, still count, as they do in a spreadsheet.
fn rows(text: &str, delimiter: u8) -> impl Iterator<Item = Result<SheetRow, AppError>> + '_ {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let bytes = text.as_bytes();
    let (mut counted_to, mut breaks, mut breaks_in_fields) = (0, 0, 0);
    reader.into_records().map(move |record| {
        let record = record.map_err(|e| corrupt("the CSV file could not be read", e))?;
        // The reported position can be inside the line breaks before the record.
        let reported = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(counted_to)
            .clamp(counted_to, bytes.len());
        let start = reported
            + bytes[reported..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        breaks += line_breaks(bytes, counted_to..start);
        counted_to = start;
        let mut row = SheetRow::new((1 + breaks).saturating_sub(breaks_in_fields));
        for (column, field) in record.iter().enumerate() {
            breaks_in_fields += line_breaks(field.as_bytes(), 0..field.len());
            row.set(column, Cell::text(field));
        }
        Ok(row)
    })
}

/// Line breaks that start in `range`: CR, LF, and CRLF counted once.
fn line_breaks(bytes: &[u8], range: std::ops::Range<usize>) -> usize {
    range
        .filter(|&i| match bytes[i] {
            b'\r' => true,
            b'\n' => i == 0 || bytes[i - 1] != b'\r',
            _ => false,
        })
        .count()
}
