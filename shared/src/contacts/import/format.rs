//! Which reader a file needs: the extension says what the user meant, the first bytes say what
//! the file is, and the bytes win when both name a spreadsheet format.

use std::io::{Cursor, Read};

use serde_json::json;
use zip::ZipArchive;

use super::{corrupt, empty_file, text, unsupported, ImportLimits};
use crate::error::AppError;

/// File extensions an upload may have (compared ignoring case).
pub const ACCEPTED_EXTENSIONS: [&str; 4] = ["csv", "xlsx", "xls", "ods"];

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const ODS_MIMETYPE: &[u8] = b"application/vnd.oasis.opendocument.spreadsheet";
const OPENDOCUMENT_MIMETYPE: &[u8] = b"application/vnd.oasis.opendocument.";

/// A workbook may unpack to this many times the upload limit, at least [`MIN_UNPACKED_BYTES`]
/// (a zip bomb unpacks a million times). A 1,000-row contact sheet is about 100 KiB zipped and
/// 1 MiB unpacked; the bound keeps calamine's copy of the strings well inside a small Lambda.
const UNPACK_RATIO: u64 = 4;
const MIN_UNPACKED_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Csv,
    Xlsx,
    Xls,
    Ods,
}

pub(super) fn from_file_name(file_name: &str) -> Result<Format, AppError> {
    let extension = file_name
        .trim()
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase());
    match extension.as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some("xls") => Ok(Format::Xls),
        Some("ods") => Ok(Format::Ods),
        _ => Err(unsupported(
            "only .csv, .xlsx, .xls and .ods files can be imported",
        )),
    }
}

/// The format of `bytes`, uploaded with an extension meaning `declared`.
pub(super) fn detect(
    declared: Format,
    bytes: &[u8],
    limits: &ImportLimits,
) -> Result<Format, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty_file("the file is empty"));
    }
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(EMPTY_ZIP_MAGIC) {
        return zip_format(bytes, max_unpacked_bytes(limits));
    }
    if bytes.starts_with(OLE_MAGIC) {
        return Ok(Format::Xls);
    }
    if text::looks_binary(bytes) {
        return Err(unsupported(
            "the file is neither a spreadsheet nor a CSV file",
        ));
    }
    if declared != Format::Csv {
        return Err(unsupported(
            "the file has a spreadsheet extension but holds plain text (a CSV or web page?); \
             upload it as .csv or save it as .xlsx",
        ));
    }
    Ok(Format::Csv)
}

fn max_unpacked_bytes(limits: &ImportLimits) -> u64 {
    u64::try_from(limits.max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_mul(UNPACK_RATIO)
        .max(MIN_UNPACKED_BYTES)
}

/// Office Open XML (.xlsx) or OpenDocument (.ods), told apart by their zip entries.
fn zip_format(bytes: &[u8], max_unpacked: u64) -> Result<Format, AppError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        corrupt(
            "the file is damaged: it starts like a workbook but is not a readable zip archive",
            e,
        )
    })?;
    let unpacked = unpacked_size(&archive)
        .map_err(|e| corrupt("the file is damaged: its zip directory is unreadable", e))?;
    if unpacked > max_unpacked {
        return Err(AppError::too_large(
            "payload_too_large",
            "the workbook unpacks to too much data; remove images, unused sheets or formatting",
        )
        .with_details(json!({ "max_unpacked_bytes": max_unpacked, "found": unpacked })));
    }
    let has_part = |prefix: &[u8]| archive.file_names_raw().any(|n| n.starts_with(prefix));
    if has_part(b"xl/workbook.bin") {
        return Err(unsupported(
            "binary Excel workbooks (.xlsb) are not supported; save the file as .xlsx",
        ));
    }
    if has_part(b"[Content_Types].xml") {
        return if has_part(b"word/") || has_part(b"ppt/") {
            Err(unsupported(
                "the file is a Word or PowerPoint document, not a spreadsheet",
            ))
        } else {
            Ok(Format::Xlsx)
        };
    }
    match mimetype(&mut archive) {
        Some(m) if m == ODS_MIMETYPE => Ok(Format::Ods),
        Some(m) if m.starts_with(OPENDOCUMENT_MIMETYPE) => Err(unsupported(
            "the file is an OpenDocument file but not a spreadsheet",
        )),
        _ => Err(unsupported("the file is a zip archive, not a spreadsheet")),
    }
}

/// What the entries declare; the zip reader stops at the declared size, so this bounds the
/// data a workbook reader can get out of the archive.
fn unpacked_size(archive: &ZipArchive<Cursor<&[u8]>>) -> zip::result::ZipResult<u64> {
    (0..archive.len()).try_fold(0u64, |total, index| {
        Ok(total.saturating_add(archive.by_index_data(index)?.size()))
    })
}

fn mimetype(archive: &mut ZipArchive<Cursor<&[u8]>>) -> Option<Vec<u8>> {
    let entry = archive.by_name("mimetype").ok()?;
    let mut content = Vec::new();
    entry.take(128).read_to_end(&mut content).ok()?;
    Some(content.trim_ascii().to_vec())
}
