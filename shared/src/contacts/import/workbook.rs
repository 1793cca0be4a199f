//! Workbooks through calamine. The first visible worksheet with any data is read; hidden sheets,
//! chart sheets and later sheets are ignored. An .xlsx sheet is streamed cell by cell (a cell
//! at XFD1048576 must not make a dense grid); .xls and .ods are parsed whole by calamine, after
//! the checks in [`guard`].

use std::io::{Cursor, Read, Seek, Write};

use calamine::{
    Data, DataType, ExcelDateTime, Ods, OdsError, Range, Reader, Sheet, SheetType, SheetVisible,
    Xls, XlsError, Xlsx, XlsxError,
};
use serde_json::json;

use super::{
    corrupt,
    fields::number_text,
    guard::{self, Refusal},
    password_protected, Cell, RowSink, SheetRow,
};
use crate::error::AppError;

pub(super) fn read_xlsx(bytes: &[u8], sink: &mut RowSink<'_>) -> Result<(), AppError> {
    guard::xlsx_references(bytes).map_err(refused)?;
    shielded(|| stream_xlsx(bytes, sink))
}

fn stream_xlsx(bytes: &[u8], sink: &mut RowSink<'_>) -> Result<(), AppError> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_error)?;
    for name in visible_worksheets(workbook.sheets_metadata()) {
        let mut cells = workbook.worksheet_cells_reader(&name).map_err(xlsx_error)?;
        let mut row = SheetRow::new(0);
        while let Some(record) = cells
            .next_cell_with_formula_metadata()
            .map_err(xlsx_error)?
        {
            let (row_index, column) = record.pos;
            let number = one_based(row_index);
            if number != row.number {
                sink.push(std::mem::replace(&mut row, SheetRow::new(number)))?;
            }
            row.set(
                column_index(column),
                cell(&record.value, record.formula.is_some()),
            );
        }
        sink.push(row)?;
        if sink.has_content() {
            break;
        }
    }
    Ok(())
}

pub(super) fn read_xls(bytes: &[u8], sink: &mut RowSink<'_>) -> Result<(), AppError> {
    let container = rebuilt_ole_container(bytes)?;
    shielded(|| {
        let mut workbook: Xls<_> = match Xls::new(Cursor::new(container)) {
            Ok(workbook) => workbook,
            Err(XlsError::Password) => return Err(password_protected()),
            Err(e) => return Err(corrupt(XLS_UNREADABLE, e)),
        };
        // A BIFF formula always carries its computed value, and the guard emptied the
        // expressions, so formulas are not read.
        read_whole_sheets(&mut workbook, sink, false, |e: XlsError| {
            corrupt(XLS_UNREADABLE, e)
        })
    })
}

const XLS_UNREADABLE: &str = "the file could not be read as an Excel 97-2003 (.xls) workbook";

/// The workbook stream of an OLE file, alone in a container written here. calamine's OLE reader
/// panics on some damaged containers (and a panic aborts a release build), so it only ever sees
/// one the validating `cfb` crate wrote.
fn rebuilt_ole_container(bytes: &[u8]) -> Result<Vec<u8>, AppError> {
    let mut source =
        cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|e| corrupt(XLS_UNREADABLE, e))?;
    // How Office stores a password-protected .xlsx.
    if source.exists("EncryptedPackage") {
        return Err(password_protected());
    }
    let Some(name) = ["Workbook", "Book"]
        .into_iter()
        .find(|name| source.is_stream(name))
    else {
        return Err(corrupt(XLS_UNREADABLE, "no Workbook stream"));
    };
    let mut stream = Vec::new();
    source
        .open_stream(name)
        .and_then(|mut s| s.read_to_end(&mut stream))
        .map_err(|e| corrupt(XLS_UNREADABLE, e))?;
    guard::biff_stream(&mut stream).map_err(refused)?;
    // Version 3, as Excel writes: calamine refuses a version 4 file whose mini stream is empty.
    let mut rebuilt =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))
            .map_err(AppError::internal)?;
    rebuilt
        .create_stream(name)
        .and_then(|mut s| s.write_all(&stream))
        .and_then(|()| rebuilt.flush())
        .map_err(AppError::internal)?;
    Ok(rebuilt.into_inner().into_inner())
}

pub(super) fn read_ods(bytes: &[u8], sink: &mut RowSink<'_>) -> Result<(), AppError> {
    guard::ods_content(bytes).map_err(refused)?;
    shielded(|| {
        let mut workbook: Ods<_> = Ods::new(Cursor::new(bytes)).map_err(ods_error)?;
        read_whole_sheets(&mut workbook, sink, true, ods_error)
    })
}

/// calamine has panicked on damaged files. Where panics unwind (tests, the local server) such a
/// panic becomes `corrupt_file`; release builds abort on panic, which is why [`guard`] runs first.
fn shielded(read: impl FnOnce() -> Result<(), AppError>) -> Result<(), AppError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        #[cfg(test)]
        CAUGHT_PANICS.with(|count| count.set(count.get() + 1));
        Err(corrupt(
            "the workbook could not be read",
            "the spreadsheet reader failed on this file",
        ))
    })
}

#[cfg(test)]
thread_local! {
    /// Panics [`shielded`] caught on this thread: tests check the guard leaves none to catch.
    pub(super) static CAUGHT_PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn refused(refusal: Refusal) -> AppError {
    match refusal {
        Refusal::Damaged(reason) => corrupt("the workbook is damaged", reason),
        Refusal::TooManyCells(found) => AppError::too_large(
            "payload_too_large",
            "the workbook's sheets span too many cells; delete unused rows and columns, or save \
             it as .xlsx",
        )
        .with_details(json!({ "max_cells": guard::MAX_GRID_CELLS, "found": found })),
    }
}

fn read_whole_sheets<RS, R, E>(
    workbook: &mut R,
    sink: &mut RowSink<'_>,
    with_formulas: bool,
    error: impl Fn(E) -> AppError,
) -> Result<(), AppError>
where
    RS: Read + Seek,
    R: Reader<RS, Error = E>,
{
    for name in visible_worksheets(workbook.sheets_metadata()) {
        let values = workbook.worksheet_range(&name).map_err(&error)?;
        // Only used to tell an uncomputed formula from an empty cell.
        let formulas = with_formulas
            .then(|| workbook.worksheet_formula(&name).ok())
            .flatten();
        push_range(&values, formulas.as_ref(), sink)?;
        if sink.has_content() {
            break;
        }
    }
    Ok(())
}

fn push_range(
    values: &Range<Data>,
    formulas: Option<&Range<String>>,
    sink: &mut RowSink<'_>,
) -> Result<(), AppError> {
    let Some((first_row, first_column)) = values.start() else {
        return Ok(());
    };
    for (offset, cells) in values.rows().enumerate() {
        let row_index = first_row.saturating_add(u32::try_from(offset).unwrap_or(u32::MAX));
        let mut row = SheetRow::new(one_based(row_index));
        for (offset, value) in cells.iter().enumerate() {
            let column = first_column.saturating_add(u32::try_from(offset).unwrap_or(u32::MAX));
            let has_formula = formulas
                .and_then(|f| f.get_value((row_index, column)))
                .is_some_and(|f| !f.is_empty());
            row.set(column_index(column), cell(value, has_formula));
        }
        sink.push(row)?;
    }
    Ok(())
}

fn visible_worksheets(sheets: &[Sheet]) -> Vec<String> {
    sheets
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
        .map(|s| s.name.clone())
        .collect()
}

/// A formula cell without a cached result reads as empty; `has_formula` tells them apart.
fn cell(value: &impl DataType, has_formula: bool) -> Cell {
    if value.is_empty() {
        return if has_formula {
            Cell::Uncomputed
        } else {
            Cell::Empty
        };
    }
    if let Some(text) = value
        .get_string()
        .or_else(|| value.get_datetime_iso())
        .or_else(|| value.get_duration_iso())
    {
        return Cell::text(text);
    }
    if let Some(number) = value.get_float() {
        return Cell::Number(number);
    }
    if let Some(number) = value.get_int() {
        // Exact for every phone-sized number.
        return Cell::Number(number as f64);
    }
    if let Some(flag) = value.get_bool() {
        return Cell::Text(if flag { "TRUE" } else { "FALSE" }.to_owned());
    }
    if let Some(moment) = value.get_datetime() {
        return Cell::Text(date_text(&moment));
    }
    match value.get_error() {
        Some(error) => Cell::Error(error.to_string()),
        None => Cell::Empty,
    }
}

/// `2024-05-01` or `2024-05-01 13:45:00`; a duration keeps its number of days.
fn date_text(moment: &ExcelDateTime) -> String {
    if moment.is_duration() {
        return number_text(moment.as_f64());
    }
    let (year, month, day, hour, minute, second, _) = moment.to_ymd_hms_milli();
    if (hour, minute, second) == (0, 0, 0) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
    }
}

fn one_based(row_index: u32) -> usize {
    usize::try_from(row_index).map_or(usize::MAX, |i| i.saturating_add(1))
}

fn column_index(column: u32) -> usize {
    usize::try_from(column).unwrap_or(usize::MAX)
}

fn xlsx_error(error: XlsxError) -> AppError {
    match error {
        XlsxError::Password => password_protected(),
        e => corrupt("the .xlsx workbook could not be read", e),
    }
}

fn ods_error(error: OdsError) -> AppError {
    match error {
        OdsError::Password => password_protected(),
        e => corrupt("the .ods workbook could not be read", e),
    }
}
