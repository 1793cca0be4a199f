//! CSV exports, written a page at a time in the list's keyset order, so neither a request nor
//! an export job holds more than one page of rows, and a job can stop after any page and
//! continue from its last row. Every cell that a spreadsheet would read as a formula is
//! escaped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{pin_mut, StreamExt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{statements::PlannedPerRun, Client};
use crate::{
    db::filter::{Filter, Keyset},
    error::{AppError, AppResult},
    spreadsheet::neutralize_formula,
};

/// Rows read per statement by an inline export (it stops past a few MiB).
pub const INLINE_PAGE_ROWS: i64 = 1000;

/// Where a row stands in the export's order: its keyset (time, id).
pub type Position = (DateTime<Utc>, Uuid);

/// A row's position and its cells.
pub type Record = (Position, Vec<String>);

/// A query to export: the list's rows and order, its filter, header and how a row becomes
/// cells.
pub struct Export {
    /// What the downloaded file is named after (`calls`, `leads`).
    pub file_name: &'static str,
    /// `SELECT ... FROM ...` of the list.
    pub select: &'static str,
    pub keyset: &'static Keyset,
    pub filter: Filter,
    /// The tables the matching rows are counted over.
    pub count_from: String,
    pub header: &'static [&'static str],
    /// A row's position and cells.
    pub record: fn(&Row) -> AppResult<Record>,
}

/// What writing one page did.
pub struct Page {
    pub rows: usize,
    /// The last row written; `None` when the page was empty.
    pub last: Option<Position>,
    /// Fewer rows than a page: nothing follows.
    pub end: bool,
}

impl Export {
    /// The header line.
    pub fn write_header(&self, out: &mut Vec<u8>) -> AppResult<()> {
        let mut writer = csv::Writer::from_writer(out);
        write_record(&mut writer, self.header.iter().map(|h| h.to_string()))?;
        writer.flush().map_err(AppError::internal)
    }

    /// Writes the page of up to `limit` rows after `after` (from the first without it) to
    /// `out`, each row as Postgres sends it: writing overlaps the query. The page is read in a
    /// read-only transaction of its own ([`Filter::page_stream`] says why).
    pub async fn write_page(
        &self,
        db: &mut Client,
        after: Option<Position>,
        limit: i64,
        out: &mut Vec<u8>,
    ) -> AppResult<Page> {
        let transaction = db.build_transaction().read_only(true).start().await?;
        let rows = self
            .filter
            .page_stream(&transaction, self.select, self.keyset, after, limit)
            .await?;
        pin_mut!(rows);
        let mut writer = csv::Writer::from_writer(out);
        let (mut count, mut last) = (0, None);
        while let Some(row) = rows.next().await {
            let (position, cells) = (self.record)(&row?)?;
            write_record(&mut writer, cells)?;
            count += 1;
            last = Some(position);
        }
        writer.flush().map_err(AppError::internal)?;
        transaction.commit().await?;
        Ok(Page {
            rows: count,
            last,
            end: count < limit as usize,
        })
    }

    /// How many rows match.
    pub async fn count(&self, db: &impl PlannedPerRun) -> AppResult<i64> {
        self.filter.count(db, &self.count_from).await
    }

    /// The name a download of this export gets.
    pub fn download_name(&self, at: DateTime<Utc>) -> String {
        format!("{}-{}.csv", self.file_name, at.format("%Y%m%d-%H%M%S"))
    }
}

/// The whole export as CSV when it is at most `max_bytes` and written within `budget`;
/// `None` when it is bigger or slower (then it is for an export job).
pub async fn inline(
    db: &mut Client,
    export: &Export,
    max_bytes: usize,
    budget: Duration,
) -> AppResult<Option<Vec<u8>>> {
    let write = async {
        let mut out = Vec::new();
        export.write_header(&mut out)?;
        let mut after = None;
        loop {
            let page = export
                .write_page(db, after, INLINE_PAGE_ROWS, &mut out)
                .await?;
            if out.len() > max_bytes {
                return Ok(None);
            }
            if page.end {
                return Ok(Some(out));
            }
            after = page.last;
        }
    };
    tokio::time::timeout(budget, write)
        .await
        .unwrap_or(Ok(None))
}

/// One CSV record, formulas escaped.
pub fn write_record(
    writer: &mut csv::Writer<&mut Vec<u8>>,
    cells: impl IntoIterator<Item = String>,
) -> AppResult<()> {
    // Field by field, each cell written from where it is: a copy of each (`into_owned`) for
    // `write_record` cost 7–9 % of an export job's CPU.
    for cell in cells {
        writer
            .write_field(neutralize_formula(&cell).as_bytes())
            .map_err(AppError::internal)?;
    }
    // An empty record after its fields ends the record.
    writer
        .write_record(None::<&[u8]>)
        .map_err(AppError::internal)
}

/// A cell from an optional value.
pub fn cell<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_quoted_and_formulas_escaped() {
        let mut out = Vec::new();
        let mut writer = csv::Writer::from_writer(&mut out);
        write_record(
            &mut writer,
            ["=1+2", "a,b", "say \"hi\"", "line\nbreak", "+1 415"].map(String::from),
        )
        .expect("write");
        drop(writer);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "'=1+2,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",'+1 415\n"
        );
    }
}
