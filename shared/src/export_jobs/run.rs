//! Running an export job, in slices of bounded time. A slice writes pages of rows into a part
//! buffer, uploads each full part (8 MiB) while it writes the next, and records each uploaded
//! part with the position of its last row; after the configured slice time
//! (`EXPORT_SLICE_SECONDS`, 10 s) it queues the job again and returns. So an export of any
//! size fits the processor's timeout and holds at most two parts and a page in memory, and a
//! slice that dies (a crash, a timeout) is retried from its last recorded part. Two runs of
//! one job (a message delivered twice) cannot both record a part: the loser stops.

use std::time::Instant;

use tokio_postgres::Row;
use uuid::Uuid;

use super::{sql, ExportKind};
use crate::{
    aws::{
        multipart::{self, Part, MIN_PART_BYTES},
        queue::{self, QueuedJob},
    },
    calls::read::CallFilter,
    db::statements::Cached,
    error::{AppError, AppResult},
    export::{Export, Position},
    leads::read::LeadFilter,
    tenant::TenantId,
    AppState,
};

/// Bytes per uploaded part (S3 wants at least 5 MiB but for the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
const _: () = assert!(PART_BYTES >= MIN_PART_BYTES);
/// A part and the page that takes it over [`PART_BYTES`].
const PART_CAPACITY: usize = PART_BYTES + PART_BYTES / 8;

/// Rows per statement, streamed: about 1.3 MB of calls, so a part is 8 MiB and a little.
const PAGE_ROWS: i64 = 5000;

/// Consecutive failed slices after which the job is failed.
const MAX_FAILURES: i32 = 5;

/// Slices one process runs at once: each holds up to two parts (about 19 MiB), and a batch of
/// ten jobs must not take the processor's 256 MB. A slice that finds no room goes back to the
/// queue for [`BUSY_DELAY_SECONDS`].
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const BUSY_DELAY_SECONDS: i32 = 5;

/// Runs the next slice of an export job. An `Err` is transient: the message is retried, and
/// the job resumes from its last recorded part.
pub async fn run(state: &AppState, id: Uuid) -> AppResult<()> {
    let Ok(_running) = RUNNING.try_acquire() else {
        return next_slice(state, id, BUSY_DELAY_SECONDS).await;
    };
    let err = match slice(state, id).await {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    if err.status.is_client_error() {
        return fail(state, id, &err.message).await;
    }
    let failures: i32 = state
        .db()
        .get()
        .await?
        .cached_query_opt(sql::NOTE_FAILURE, &[&id])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or_default();
    tracing::warn!(export = %id, failures, error = %err, "an export slice failed");
    if failures >= MAX_FAILURES {
        return fail(state, id, "the export failed repeatedly").await;
    }
    Err(err)
}

/// Where a job stands, as recorded after its last part.
struct Progress {
    upload_id: String,
    parts: Vec<Part>,
    rows: i64,
    bytes: i64,
    after: Option<Position>,
}

async fn slice(state: &AppState, id: Uuid) -> AppResult<()> {
    let db = state.db().get().await?;
    let Some(row) = db.cached_query_opt(sql::ONE, &[&id]).await? else {
        return Ok(());
    };
    let status: &str = row.try_get("status")?;
    if status != "queued" && status != "running" {
        return Ok(()); // a duplicate message of a finished job
    }
    let tenant = TenantId::from_trusted(row.try_get("user_id")?);
    let export = build(&db, tenant, &row).await?;
    let s3 = state.aws();
    let bucket = &state.config().aws.recordings_bucket;
    let key: &str = row.try_get("s3_key")?;
    if status == "queued" {
        let total = export.count(&db).await?;
        let file_name: &str = row.try_get("file_name")?;
        let upload_id = multipart::start(
            s3,
            bucket,
            key,
            "text/csv; charset=utf-8",
            &format!("attachment; filename=\"{file_name}\""),
        )
        .await?;
        if db
            .cached_execute(sql::START, &[&id, &upload_id, &total])
            .await?
            == 0
        {
            // Another run of the job started it.
            return multipart::abort(s3, bucket, key, &upload_id).await;
        }
    }
    let row = db
        .cached_query_one(sql::ONE, &[&id])
        .await
        .map_err(AppError::from)?;
    drop(db);
    let mut progress = Progress::read(&row)?;
    let started = Instant::now();
    let mut buffer = Vec::with_capacity(PART_CAPACITY);
    if progress.rows == 0 && progress.parts.is_empty() {
        export.write_header(&mut buffer)?;
    }
    let mut rows_in_buffer = 0;
    let mut after = progress.after;
    // The part uploading while the next one is written.
    let mut in_flight: Option<InFlight> = None;
    let mut writing = std::time::Duration::ZERO;
    loop {
        let at = Instant::now();
        // A connection per page: none is held while waiting on S3.
        let page = export
            .write_page(&mut state.db().get().await?, after, PAGE_ROWS, &mut buffer)
            .await?;
        writing += at.elapsed();
        rows_in_buffer += page.rows as i64;
        after = page.last.or(after);
        if buffer.len() < PART_BYTES && !page.end {
            continue;
        }
        if let Some(previous) = in_flight.take() {
            if !previous.land(&mut progress, state, id).await? {
                return Ok(()); // another run of this job is ahead
            }
        }
        if !buffer.is_empty() {
            let (s3, bucket, key) = (s3.clone(), bucket.clone(), key.to_owned());
            let (upload_id, number) = (progress.upload_id.clone(), progress.parts.len() as i32 + 1);
            let bytes = buffer.len() as i64;
            let body = std::mem::take(&mut buffer);
            in_flight = Some(InFlight {
                upload: tokio::spawn(async move {
                    multipart::upload_part(&s3, &bucket, &key, &upload_id, number, body).await
                }),
                rows: std::mem::take(&mut rows_in_buffer),
                bytes,
                after,
            });
        }
        let last_of_slice = started.elapsed() >= state.config().export_slice;
        if !page.end && !last_of_slice {
            buffer.reserve(PART_CAPACITY);
            continue;
        }
        if let Some(previous) = in_flight.take() {
            if !previous.land(&mut progress, state, id).await? {
                return Ok(());
            }
        }
        let db = state.db().get().await?;
        tracing::info!(
            export = %id,
            rows = progress.rows,
            bytes = progress.bytes,
            slice_ms = started.elapsed().as_millis() as u64,
            writing_ms = writing.as_millis() as u64,
            "export slice ended"
        );
        if page.end {
            let at = Instant::now();
            multipart::complete(s3, bucket, key, &progress.upload_id, &progress.parts).await?;
            db.cached_execute(sql::FINISH, &[&id]).await?;
            tracing::info!(export = %id, complete_ms = at.elapsed().as_millis() as u64, "export done");
            return Ok(());
        }
        db.cached_execute(sql::SLICE_ENDED, &[&id]).await?;
        return next_slice(state, id, 0).await;
    }
}

async fn next_slice(state: &AppState, id: Uuid, delay_seconds: i32) -> AppResult<()> {
    queue::send_job(
        state.aws(),
        state.webhook_queue_url()?,
        &QueuedJob::Export { export_id: id },
        delay_seconds,
    )
    .await
}

/// A part on its way to S3, and where the export stands once it is there.
struct InFlight {
    upload: tokio::task::JoinHandle<AppResult<Part>>,
    rows: i64,
    bytes: i64,
    after: Option<Position>,
}

impl InFlight {
    /// Waits for the upload and records the part; false when another run recorded one first.
    async fn land(self, progress: &mut Progress, state: &AppState, id: Uuid) -> AppResult<bool> {
        let part = self.upload.await.map_err(AppError::internal)??;
        progress
            .record(state, id, part, self.rows, self.bytes, self.after)
            .await
    }
}

impl Progress {
    fn read(row: &Row) -> AppResult<Self> {
        let parts: serde_json::Value = row.try_get("parts")?;
        Ok(Self {
            upload_id: row
                .try_get::<_, Option<String>>("upload_id")?
                .ok_or_else(|| AppError::internal("a running export without an upload"))?,
            parts: serde_json::from_value(parts).map_err(AppError::internal)?,
            rows: row.try_get("rows_written")?,
            bytes: row.try_get("bytes_written")?,
            after: match (row.try_get("after_time")?, row.try_get("after_id")?) {
                (Some(time), Some(id)) => Some((time, id)),
                _ => None,
            },
        })
    }

    /// Records an uploaded part; false when another run recorded one first.
    async fn record(
        &mut self,
        state: &AppState,
        id: Uuid,
        part: Part,
        rows: i64,
        bytes: i64,
        after: Option<Position>,
    ) -> AppResult<bool> {
        let appended = serde_json::to_value([&part]).map_err(AppError::internal)?;
        let recorded = state
            .db()
            .get()
            .await?
            .cached_execute(
                sql::PROGRESS,
                &[
                    &id,
                    &appended,
                    &after.map(|(time, _)| time),
                    &after.map(|(_, id)| id),
                    &(self.rows + rows),
                    &(self.bytes + bytes),
                    &self.rows,
                    &(self.parts.len() as i32),
                ],
            )
            .await?
            == 1;
        if recorded {
            self.rows += rows;
            self.bytes += bytes;
            self.parts.push(part);
        }
        Ok(recorded)
    }
}

/// The export a job was created for, from the filters it keeps.
async fn build(db: &deadpool_postgres::Object, tenant: TenantId, row: &Row) -> AppResult<Export> {
    let filters: serde_json::Value = row.try_get("filters")?;
    match ExportKind::parse(row.try_get("kind")?) {
        ExportKind::Calls => {
            let filter: CallFilter = serde_json::from_value(filters).map_err(AppError::internal)?;
            crate::calls::read::export(db, tenant, &filter).await
        }
        ExportKind::Leads => {
            let filter: LeadFilter = serde_json::from_value(filters).map_err(AppError::internal)?;
            crate::leads::read::export(db, tenant, &filter).await
        }
    }
}

/// Fails the job for good (its upload dropped); acknowledged.
async fn fail(state: &AppState, id: Uuid, reason: &str) -> AppResult<()> {
    let failed = state
        .db()
        .get()
        .await?
        .cached_query_opt(sql::FAIL, &[&id, &reason])
        .await?;
    tracing::warn!(export = %id, reason, "export failed");
    if let Some(row) = failed {
        drop_upload(state, id, &row).await?;
    }
    Ok(())
}

/// Fails the jobs that stopped moving ([`super::STALLED_AFTER`]), their uploads dropped; how
/// many.
pub async fn fail_stalled(state: &AppState) -> AppResult<usize> {
    let stalled = state
        .db()
        .get()
        .await?
        .cached_query(sql::FAIL_STALLED, &[&super::STALLED_AFTER.as_secs_f64()])
        .await?;
    for row in &stalled {
        let id: Uuid = row.try_get("id")?;
        tracing::warn!(export = %id, "an export stopped; failed");
        drop_upload(state, id, row).await?;
    }
    Ok(stalled.len())
}

/// Aborts a failed job's multipart upload (`upload_id`, `s3_key` of `row`), if it started one.
async fn drop_upload(state: &AppState, id: Uuid, row: &Row) -> AppResult<()> {
    let Some(upload_id) = row.try_get::<_, Option<String>>("upload_id")? else {
        return Ok(());
    };
    let key: &str = row.try_get("s3_key")?;
    let aborted = multipart::abort(
        state.aws(),
        &state.config().aws.recordings_bucket,
        key,
        &upload_id,
    )
    .await;
    if let Err(err) = aborted {
        tracing::warn!(export = %id, error = %err, "could not abort a failed export's upload");
    }
    Ok(())
}
