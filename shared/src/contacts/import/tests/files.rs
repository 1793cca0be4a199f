//! Real files for the tests: .xlsx through rust_xlsxwriter, .ods and other zips written by
//! hand with the zip crate (the .xls fixture is committed, see scripts/fixtures/make_xls.py).

use std::io::{Cursor, Read, Write};

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use zip::{write::SimpleFileOptions, CompressionMethod, ZipArchive, ZipWriter};

/// A test cell.
#[derive(Debug, Clone)]
pub enum V {
    S(String),
    N(f64),
    /// A formula and its cached result; `None` writes no result at all.
    F(&'static str, Option<&'static str>),
    /// A date (year, month, day), formatted as a date.
    D(u16, u8, u8),
    Blank,
}

pub fn s(text: &str) -> V {
    V::S(text.to_owned())
}

pub fn row(cells: &[&str]) -> Vec<V> {
    cells.iter().map(|c| s(c)).collect()
}

pub struct Sheet<'a> {
    pub name: &'a str,
    pub hidden: bool,
    pub rows: Vec<Vec<V>>,
}

pub fn xlsx(rows: Vec<Vec<V>>) -> Vec<u8> {
    xlsx_sheets(vec![Sheet {
        name: "Sheet1",
        hidden: false,
        rows,
    }])
}

/// Written as a formula result, then removed from the file.
const NO_RESULT: &str = "NO-RESULT";

pub fn xlsx_sheets(sheets: Vec<Sheet<'_>>) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let active = sheets.iter().position(|s| !s.hidden);
    for (index, sheet) in sheets.iter().enumerate() {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(sheet.name).unwrap();
        if sheet.hidden {
            worksheet.set_hidden(true);
        }
        // The active sheet is always shown, and it is the first one unless told otherwise.
        if Some(index) == active {
            worksheet.set_active(true);
        }
        for (r, cells) in sheet.rows.iter().enumerate() {
            let r = u32::try_from(r).unwrap();
            for (c, cell) in cells.iter().enumerate() {
                let c = u16::try_from(c).unwrap();
                match cell {
                    V::S(text) => worksheet.write_string(r, c, text).map(drop),
                    V::N(number) => worksheet.write_number(r, c, *number).map(drop),
                    V::F(formula, result) => worksheet
                        .write_formula(
                            r,
                            c,
                            Formula::new(formula).set_result(result.unwrap_or(NO_RESULT)),
                        )
                        .map(drop),
                    V::D(y, m, d) => worksheet
                        .write_datetime_with_format(
                            r,
                            c,
                            ExcelDateTime::from_ymd(*y, *m, *d).unwrap(),
                            &date,
                        )
                        .map(drop),
                    V::Blank => Ok(()),
                }
                .unwrap();
            }
        }
    }
    let bytes = workbook.save_to_buffer().unwrap();
    if sheets
        .iter()
        .flat_map(|s| &s.rows)
        .flatten()
        .any(|c| matches!(c, V::F(_, None)))
    {
        // rust_xlsxwriter always writes a result; programs like openpyxl write none.
        return rewrite_entries(&bytes, |name, xml| {
            if name.starts_with("xl/worksheets/") {
                xml.replace(&format!("<v>{NO_RESULT}</v>"), "")
            } else {
                xml
            }
        });
    }
    bytes
}

pub fn ods(rows: Vec<Vec<V>>) -> Vec<u8> {
    let mut table = String::new();
    for cells in rows {
        table.push_str("<table:table-row>");
        for cell in cells {
            table.push_str(&ods_cell(&cell));
        }
        table.push_str("</table:table-row>");
    }
    ods_table(&table)
}

/// An .ods file whose one table holds `rows_xml`.
pub fn ods_table(rows_xml: &str) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Contacts">{rows_xml}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    zip(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("META-INF/manifest.xml", manifest.as_bytes()),
        ("content.xml", content.as_bytes()),
    ])
}

fn ods_cell(cell: &V) -> String {
    match cell {
        V::S(text) => {
            let text = escape(text);
            format!(
                r#"<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>"#
            )
        }
        V::N(number) => format!(
            r#"<table:table-cell office:value-type="float" office:value="{number}"><text:p>{number}</text:p></table:table-cell>"#
        ),
        V::F(formula, Some(result)) => {
            let (formula, result) = (escape(formula), escape(result));
            format!(
                r#"<table:table-cell table:formula="of:{formula}" office:value-type="string" office:string-value="{result}"><text:p>{result}</text:p></table:table-cell>"#
            )
        }
        V::F(formula, None) => {
            format!(
                r#"<table:table-cell table:formula="of:{}"/>"#,
                escape(formula)
            )
        }
        V::D(y, m, d) => format!(
            r#"<table:table-cell office:value-type="date" office:date-value="{y:04}-{m:02}-{d:02}"><text:p>{y}-{m}-{d}</text:p></table:table-cell>"#
        ),
        V::Blank => "<table:table-cell/>".into(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A zip archive with stored (uncompressed) entries, in order.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A zip whose single entry is `size` zero bytes, deflated (a few KiB on disk).
pub fn zip_bomb(size: usize) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    writer.start_file("[Content_Types].xml", options).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..size.div_ceil(chunk.len()) {
        writer.write_all(&chunk).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `bytes` (a zip) with each text entry passed through `edit`.
pub fn rewrite_entries(bytes: &[u8], mut edit: impl FnMut(&str, String) -> String) -> Vec<u8> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let content = match String::from_utf8(content) {
            Ok(text) => edit(&name, text).into_bytes(),
            Err(binary) => binary.into_bytes(),
        };
        entries.push((name, content));
    }
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    zip(&borrowed)
}

/// An .xls file: the Workbook stream of `xls`, edited, in a new OLE container.
pub fn edit_xls_stream(xls: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut source = cfb::CompoundFile::open(Cursor::new(xls)).unwrap();
    let mut stream = Vec::new();
    source
        .open_stream("Workbook")
        .unwrap()
        .read_to_end(&mut stream)
        .unwrap();
    edit(&mut stream);
    let mut out =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new())).unwrap();
    out.create_stream("Workbook")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    out.flush().unwrap();
    out.into_inner().into_inner()
}

/// Offsets of the BIFF records in `stream`.
pub fn biff_records(stream: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 4 <= stream.len() {
        offsets.push(at);
        at += 4 + usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
    }
    offsets
}

/// The offset of the first record of type `kind`.
pub fn biff_record(stream: &[u8], kind: u16) -> usize {
    *biff_records(stream)
        .iter()
        .find(|&&at| u16::from_le_bytes([stream[at], stream[at + 1]]) == kind)
        .unwrap()
}

/// The first bytes of a real PNG (signature and header chunk).
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82";
