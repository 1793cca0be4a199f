//! Checks that run before calamine sees an .xls or .ods file. calamine turns each sheet of those
//! into a dense grid (every cell between the first and the last one) and trusts sizes and
//! offsets in the file; a few hundred crafted bytes could make it allocate gigabytes or index
//! out of bounds, and a release build aborts on either. (An .xlsx sheet is streamed instead.)

use std::io::{BufReader, Cursor};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

/// Grid cells calamine may allocate for one workbook, all sheets together (a contact list of
/// 1,000 rows and 20 columns needs 20,000).
pub(super) const MAX_GRID_CELLS: u64 = 1_000_000;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Damaged(&'static str),
    TooManyCells(u64),
}

/// The bounding box of the cells of one sheet.
#[derive(Default)]
struct Extent {
    rows: Option<(u64, u64)>,
    columns: Option<(u64, u64)>,
}

impl Extent {
    fn include(&mut self, rows: (u64, u64), columns: (u64, u64)) {
        let widen = |span: &mut Option<(u64, u64)>, (first, last): (u64, u64)| {
            *span = Some(span.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
        };
        widen(&mut self.rows, rows);
        widen(&mut self.columns, columns);
    }

    /// Includes the cells from `first` to `last`, each (row, column).
    fn include_range(&mut self, first: (u32, u32), last: (u32, u32)) {
        self.include(
            (u64::from(first.0), u64::from(last.0)),
            (u64::from(first.1), u64::from(last.1)),
        );
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((r0, r1)), Some((c0, c1))) => (r1 - r0)
                .saturating_add(1)
                .saturating_mul((c1 - c0).saturating_add(1)),
            _ => 0,
        }
    }
}

// BIFF record types.
const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const DIMENSIONS: u16 = 0x0200;
const BOUNDSHEET: u16 = 0x0085;
const FORMULA: u16 = 0x0006;
const MULRK: u16 = 0x00BD;
/// FORMULA, NUMBER, LABEL, RSTRING, BOOLERR, RK, LABELSST, MULRK: row and column come first.
const CELLS: [u16; 8] = [
    FORMULA, 0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, MULRK,
];
/// FILEPASS, CODEPAGE, DATEMODE: calamine reads a 16-bit value without a length check.
const WORD_RECORDS: [u16; 3] = [0x002F, 0x0042, 0x0022];
/// NAME, EXTERNSHEET, MERGECELLS: not needed for contacts, and calamine parses them unchecked;
/// they are given a record type it skips.
const UNNEEDED: [u16; 3] = [0x0018, 0x0017, 0x00E5];
/// INTERFACEEND, a record calamine ignores.
const IGNORED: u16 = 0x00E2;
const SST: u16 = 0x00FC;
const CONTINUE: u16 = 0x003C;

/// Walks the records of an .xls workbook stream and rewrites it in place (offsets stay valid)
/// so calamine can neither over-allocate nor index out of bounds on what fuzzing found:
/// DIMENSIONS records are zeroed (calamine reserves their area up front), formula expressions
/// are emptied (the cached value stays; calamine's expression parser trusts lengths), unneeded
/// records are retyped, and short records, sheet offsets that are not where a substream starts
/// and sheets whose cells span more than [`MAX_GRID_CELLS`] are refused.
pub(super) fn biff_stream(stream: &mut [u8]) -> Result<(), Refusal> {
    let length = stream.len();
    let (mut at, mut depth, mut total) = (0, 0usize, 0u64);
    let mut sheet = Extent::default();
    // calamine reads each sheet's records from its BOUNDSHEET's offset; one that is not where
    // this walk found a BOF would have calamine read records this walk never saw.
    let (mut sheet_offsets, mut substream_starts) = (Vec::new(), Vec::new());
    while at + 4 <= length {
        let kind = u16::from_le_bytes([stream[at], stream[at + 1]]);
        let size = usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
        let data = at + 4..(at + 4 + size).min(length);
        let short = |minimum: usize| {
            if data.len() < minimum {
                Err(Refusal::Damaged("a record of the workbook is truncated"))
            } else {
                Ok(())
            }
        };
        match kind {
            BOF => {
                short(2)?;
                substream_starts.push(at);
                // Nested substreams (charts) are counted with their sheet.
                if depth == 0 {
                    total = total.saturating_add(std::mem::take(&mut sheet).cells());
                }
                depth += 1;
            }
            EOF => depth = depth.saturating_sub(1),
            DIMENSIONS => stream[data.clone()].fill(0),
            BOUNDSHEET => {
                short(8)?;
                let offset = &stream[data.start..data.start + 4];
                sheet_offsets.push(u32::from_le_bytes([
                    offset[0], offset[1], offset[2], offset[3],
                ]));
            }
            kind if WORD_RECORDS.contains(&kind) => short(2)?,
            SST => {
                let mut segments = vec![&stream[data.clone()]];
                segments.extend(continuations(stream, data.end));
                if !shared_strings_fit(&segments) {
                    return Err(Refusal::Damaged(
                        "the shared strings of the workbook are cut short",
                    ));
                }
            }
            kind if UNNEEDED.contains(&kind) => {
                stream[at..at + 2].copy_from_slice(&IGNORED.to_le_bytes());
            }
            _ => {}
        }
        if CELLS.contains(&kind) {
            let (rows, columns) = cell_span(kind, &stream[data.clone()])
                .ok_or(Refusal::Damaged("a cell record is truncated"))?;
            sheet.include(rows, columns);
        }
        if kind == FORMULA {
            // Expression length: zero. The cached result (bytes 6..14) is what is imported.
            short(22)?;
            stream[data.start + 20..data.start + 22].fill(0);
        }
        at = data.end;
    }
    let at_a_substream = |offset: u32| {
        usize::try_from(offset).is_ok_and(|offset| substream_starts.binary_search(&offset).is_ok())
    };
    if !sheet_offsets.into_iter().all(at_a_substream) {
        return Err(Refusal::Damaged(
            "a sheet record does not point at a sheet of the workbook",
        ));
    }
    total = total.saturating_add(sheet.cells());
    if total > MAX_GRID_CELLS {
        return Err(Refusal::TooManyCells(total));
    }
    Ok(())
}

/// The data of the CONTINUE records that start at `at`.
fn continuations(stream: &[u8], mut at: usize) -> Vec<&[u8]> {
    let mut segments = Vec::new();
    while let Some(header) = stream.get(at..at + 4) {
        if u16::from_le_bytes([header[0], header[1]]) != CONTINUE {
            break;
        }
        let size = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let data = at + 4..(at + 4 + size).min(stream.len());
        at = data.end;
        segments.push(&stream[data]);
    }
    segments
}

/// Walks the shared strings (SST record, then its CONTINUE records) the way calamine reads
/// them and tells whether calamine stays in bounds: a string header cut by a record boundary,
/// or an empty CONTINUE record inside a string, makes it index past the end. Where calamine
/// returns an error instead, this answers true and lets it.
fn shared_strings_fit(segments: &[&[u8]]) -> bool {
    let mut rest = segments.iter().copied();
    let mut data = rest.next().and_then(|sst| sst.get(8..)).unwrap_or_default();
    let u16_at = |d: &[u8]| usize::from(u16::from_le_bytes([d[0], d[1]]));
    loop {
        while data.is_empty() {
            match rest.next() {
                Some(next) => data = next,
                None => return true,
            }
        }
        if data.len() < 3 {
            return true;
        }
        let (characters, flags) = (u16_at(data), data[2]);
        data = &data[3..];
        let mut trailing = 0usize;
        if flags & 0x8 != 0 {
            let Some(runs) = data.get(..2) else {
                return false;
            };
            trailing = 4 * u16_at(runs);
            data = &data[2..];
        }
        if flags & 0x4 != 0 {
            let Some(size) = data.get(..4) else {
                return false;
            };
            let size = i32::from_le_bytes([size[0], size[1], size[2], size[3]]);
            // As calamine converts it; a negative size runs to the end, which it reports.
            let size = size as usize;
            trailing = trailing.saturating_add(size);
            data = &data[4..];
        }
        let (mut left, mut wide) = (characters, flags & 0x1 != 0);
        loop {
            let width = if wide { 2 } else { 1 };
            let taken = (data.len() / width).min(left);
            data = &data[taken * width..];
            left -= taken;
            if left == 0 {
                break;
            }
            match rest.next() {
                Some([]) => return false,
                Some(next) => {
                    wide = next[0] & 0x1 != 0;
                    data = &next[1..];
                }
                None => return true,
            }
        }
        while trailing > 0 {
            if data.is_empty() {
                match rest.next() {
                    Some(next) => data = next,
                    None => return true,
                }
            }
            let skipped = trailing.min(data.len());
            data = &data[skipped..];
            trailing -= skipped;
        }
    }
}

/// Rows and columns a cell record covers (MULRK: several columns, six bytes each).
fn cell_span(kind: u16, data: &[u8]) -> Option<((u64, u64), (u64, u64))> {
    let u16_at = |i: usize| {
        data.get(i..i + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let row = u16_at(0)?;
    let first_column = u16_at(2)?;
    let mut last_column = first_column;
    if kind == MULRK {
        last_column = u16_at(data.len().checked_sub(2)?)?;
        let columns = last_column.checked_sub(first_column)? + 1;
        if u64::try_from(data.len()).ok()? != 6 + 6 * columns {
            return None;
        }
    }
    Some(((row, row), (first_column, last_column)))
}

/// Estimates what calamine allocates for the tables of an .ods file's content.xml: every cell of
/// every row element up to its last non-empty cell (column repeats expanded), plus each table's
/// dense grid (row repeats expanded too).
pub(super) fn ods_content(bytes: &[u8]) -> Result<(), Refusal> {
    let damaged = |_| Refusal::Damaged("the content of the .ods file is unreadable");
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(damaged)?;
    let content = archive.by_name("content.xml").map_err(damaged)?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(content));
    let mut buffer = Vec::new();
    let mut table = OdsTable::default();
    let mut total = 0u64;
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|_| Refusal::Damaged("the content of the .ods file is not valid XML"))?;
        match event {
            Event::Start(e) => table.open(&e, true),
            Event::Empty(e) => {
                table.open(&e, false);
                table.close(e.name().as_ref());
            }
            Event::End(e) => {
                if e.name().as_ref() == "table:table" {
                    total = total.saturating_add(std::mem::take(&mut table).cells());
                } else {
                    table.close(e.name().as_ref());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if total.saturating_add(table.cells()) > MAX_GRID_CELLS {
            return Err(Refusal::TooManyCells(total.saturating_add(table.cells())));
        }
        buffer.clear();
    }
    Ok(())
}

/// The largest sheet a spreadsheet program writes.
const MAX_ROWS: u32 = 1_048_576;
const MAX_COLUMNS: u32 = 16_384;

/// Checks the cell references of an .xlsx file's worksheets before calamine reads them: its
/// arithmetic on a reference overflows (a panic in debug builds) on ones no spreadsheet writes,
/// with too many letters or digits or a range that ends before it starts. And calamine
/// allocates a sheet's whole grid, from its `dimension` and from its farthest cells: worksheets
/// spanning more than [`MAX_GRID_CELLS`] in all are refused (two far-apart cells would
/// otherwise ask for terabytes and abort the process).
pub(super) fn xlsx_references(bytes: &[u8]) -> Result<(), Refusal> {
    let damaged = |_| Refusal::Damaged("the .xlsx file is unreadable");
    const NOT_XML: Refusal = Refusal::Damaged("a worksheet of the .xlsx file is not valid XML");
    const IMPOSSIBLE: Refusal =
        Refusal::Damaged("a worksheet of the .xlsx file has an impossible cell reference");
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(damaged)?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(damaged)?;
        let name = entry.name().map_err(damaged)?.to_ascii_lowercase();
        if name.ends_with("sharedstrings.xml") {
            announced_strings_fit(entry)?;
            continue;
        }
        if !name.starts_with("xl/worksheets/") {
            continue;
        }
        let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
        let mut buffer = Vec::new();
        let mut grid = Extent::default();
        loop {
            match reader.read_event_into(&mut buffer).map_err(|_| NOT_XML)? {
                Event::Start(element) | Event::Empty(element) => {
                    for attribute in element.attributes() {
                        let attribute = attribute.map_err(|_| NOT_XML)?;
                        match (element.name().as_ref(), attribute.key.as_ref()) {
                            ("row", "r") => {
                                row_number(&attribute.value).ok_or(IMPOSSIBLE)?;
                            }
                            ("c", "r") => {
                                let cell = cell_reference(&attribute.value).ok_or(IMPOSSIBLE)?;
                                grid.include_range(cell, cell);
                            }
                            (name, "ref") => {
                                let (first, last) =
                                    cell_range(&attribute.value).ok_or(IMPOSSIBLE)?;
                                if name == "dimension" {
                                    grid.include_range(first, last);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buffer.clear();
        }
        total = total.saturating_add(grid.cells());
        if total > MAX_GRID_CELLS {
            return Err(Refusal::TooManyCells(total));
        }
    }
    Ok(())
}

/// calamine reserves room for as many shared strings as the `sst` element's `uniqueCount`
/// announces before it reads one; more than a sheet may hold cells is refused (a few digits
/// added there would otherwise ask for terabytes and abort the process).
fn announced_strings_fit(entry: impl std::io::Read) -> Result<(), Refusal> {
    const TOO_MANY: Refusal =
        Refusal::Damaged("the .xlsx file announces more shared strings than it can hold");
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element))
                if element.local_name().as_ref() == "sst" =>
            {
                for attribute in element.attributes().flatten() {
                    if attribute.key.local_name().as_ref() != "uniqueCount" {
                        continue;
                    }
                    let digits = attribute
                        .value
                        .strip_prefix('+')
                        .unwrap_or(&attribute.value);
                    let announced = digits.bytes().try_fold(0_u64, |n, b| {
                        b.is_ascii_digit()
                            .then(|| n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
                    });
                    if announced.is_some_and(|n| n > MAX_GRID_CELLS) {
                        return Err(TOO_MANY);
                    }
                }
                return Ok(());
            }
            // What calamine cannot read it refuses on its own, without reserving anything.
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        buffer.clear();
    }
}

/// `7` as a row number, if a sheet can have it.
fn row_number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|row| (1..=MAX_ROWS).contains(row))
}

/// `AB7` as (row, column), if a sheet can have that cell.
fn cell_reference(text: &str) -> Option<(u32, u32)> {
    let digits = text.find(|c: char| c.is_ascii_digit())?;
    let (letters, row) = text.split_at(digits);
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return None;
    }
    let column = letters.bytes().fold(0, |column, letter| {
        column * 26 + u32::from(letter.to_ascii_uppercase() - b'A') + 1
    });
    (column <= MAX_COLUMNS).then_some((row_number(row)?, column))
}

/// `A1:C9` (or one cell) as its first and last (row, column), if it starts where it ends or
/// before.
fn cell_range(text: &str) -> Option<((u32, u32), (u32, u32))> {
    let (first, last) = text.split_once(':').unwrap_or((text, text));
    let (first, last) = (cell_reference(first)?, cell_reference(last)?);
    (first.0 <= last.0 && first.1 <= last.1).then_some((first, last))
}

#[derive(Default)]
struct OdsTable {
    /// Cells calamine keeps per row element before expanding rows.
    row_cells: u64,
    grid: Extent,
    next_row: u64,
    row_repeat: u64,
    next_column: u64,
    row_width: u64,
}

impl OdsTable {
    fn open(&mut self, element: &BytesStart<'_>, has_children: bool) {
        match element.name().as_ref() {
            "table:table-row" => {
                self.row_repeat = repeat(element, "table:number-rows-repeated");
                self.next_column = 0;
                self.row_width = 0;
            }
            "table:table-cell" | "table:covered-table-cell" => {
                let columns = repeat(element, "table:number-columns-repeated");
                let first = self.next_column;
                self.next_column = first.saturating_add(columns);
                let has_value = has_children
                    || has_attribute(element, "office:value-type")
                    || has_attribute(element, "table:formula");
                if has_value && self.row_repeat > 0 {
                    self.row_width = self.next_column;
                    let last_row = self.next_row.saturating_add(self.row_repeat - 1);
                    self.grid
                        .include((self.next_row, last_row), (first, self.next_column - 1));
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        if name == "table:table-row" {
            self.row_cells = self.row_cells.saturating_add(self.row_width);
            self.next_row = self.next_row.saturating_add(self.row_repeat);
        }
    }

    fn cells(&self) -> u64 {
        self.row_cells.saturating_add(self.grid.cells())
    }
}

/// A repeat count; at least 1, so the estimate never falls short.
fn repeat(element: &BytesStart<'_>, attribute: &str) -> u64 {
    element
        .try_get_attribute(attribute)
        .ok()
        .flatten()
        .and_then(|a| a.value.trim().parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn has_attribute(element: &BytesStart<'_>, attribute: &str) -> bool {
    matches!(element.try_get_attribute(attribute), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SST record's data: 8 bytes of counts, then `strings`.
    fn sst(strings: &[u8]) -> Vec<u8> {
        [&[0u8; 8][..], strings].concat()
    }

    #[test]
    fn shared_strings_that_calamine_reads_in_bounds() {
        assert!(shared_strings_fit(&[&sst(&[3, 0, 0, b'a', b'b', b'c'])]));
        // A string continued in the next record, which starts with its own flags byte.
        assert!(shared_strings_fit(&[
            &sst(&[4, 0, 0, b'a', b'b']),
            &[0, b'c', b'd']
        ]));
        // Rich text: 1 run (4 bytes) after the characters.
        assert!(shared_strings_fit(&[&sst(&[
            1, 0, 0x08, 1, 0, b'a', 0, 0, 0, 0
        ])]));
        // Cut short where calamine reports an error itself.
        assert!(shared_strings_fit(&[&sst(&[9, 0, 0, b'a'])]));
    }

    #[test]
    fn shared_strings_that_would_make_calamine_index_out_of_bounds() {
        // The rich-text run count or the extension size is cut by the end of the record.
        assert!(!shared_strings_fit(&[&sst(&[1, 0, 0x08, 1])]));
        assert!(!shared_strings_fit(&[&sst(&[1, 0, 0x04, 1, 0])]));
        // The string goes on into an empty CONTINUE record.
        assert!(!shared_strings_fit(&[&sst(&[4, 0, 0, b'a', b'b']), &[]]));
    }

    #[test]
    fn mulrk_spans_its_columns() {
        let mulrk = [5, 0, 2, 0, 0, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 3, 0];
        assert_eq!(cell_span(MULRK, &mulrk), Some(((5, 5), (2, 3))));
        assert_eq!(cell_span(MULRK, &mulrk[..16]), None);
        assert_eq!(cell_span(0x0203, &[1, 0]), None);
    }
}
