//! CSV exports, streamed: rows go out in chunks as Postgres returns them, so an export of a
//! hundred thousand calls never sits in memory. Every cell that a spreadsheet would read as a
//! formula is escaped.

use std::convert::Infallible;

use axum::body::Bytes;
use futures::{pin_mut, Stream, StreamExt};
use tokio_postgres::Row;

use crate::{db::filter::Filter, error::AppResult, spreadsheet::neutralize_formula};

/// Rows written per chunk sent to the client.
const ROWS_PER_CHUNK: usize = 500;

/// A query to export: its SQL (with the filter's placeholders), header and how a row becomes
/// cells.
pub struct Export {
    pub file_name: &'static str,
    pub sql: String,
    pub filter: Filter,
    pub header: &'static [&'static str],
    pub cells: fn(&Row) -> AppResult<Vec<String>>,
}

/// The export as CSV chunks, the header first. A database failure midway ends the stream
/// early (a response's status line was already sent), and is logged.
pub fn stream(
    db: deadpool_postgres::Object,
    export: Export,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        if let Err(err) = produce(&db, &export, &tx).await {
            tracing::error!(error = %err, file = export.file_name, "export stopped early");
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    })
}

/// The name a download of an export gets.
pub fn file_name() -> String {
    format!("export-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"))
}

async fn produce(
    db: &deadpool_postgres::Object,
    export: &Export,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut chunk = Vec::new();
    write_record(&mut chunk, export.header.iter().map(|h| h.to_string()))?;
    let rows = db
        .query_raw(&export.sql, export.filter.params_with(&[]))
        .await?;
    pin_mut!(rows);
    let mut in_chunk = 0;
    while let Some(row) = rows.next().await {
        write_record(&mut chunk, (export.cells)(&row?)?.into_iter())?;
        in_chunk += 1;
        if in_chunk == ROWS_PER_CHUNK {
            if tx
                .send(Bytes::from(std::mem::take(&mut chunk)))
                .await
                .is_err()
            {
                return Ok(()); // the client went away
            }
            in_chunk = 0;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Bytes::from(chunk)).await;
    }
    Ok(())
}

/// One CSV record, formulas escaped.
pub fn write_record(out: &mut Vec<u8>, cells: impl Iterator<Item = String>) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(cells.map(|c| neutralize_formula(&c).into_owned()))?;
    writer.flush()?;
    Ok(())
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
        write_record(
            &mut out,
            ["=1+2", "a,b", "say \"hi\"", "line\nbreak", "+1 415"]
                .into_iter()
                .map(String::from),
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "'=1+2,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",'+1 415\n"
        );
    }
}
