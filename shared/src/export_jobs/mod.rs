//! Export jobs: a CSV export too big (or too slow) to answer inline is written to S3 in the
//! background and handed out as a presigned URL. Creating one stores the job and queues it on
//! the webhook queue; the processor runs it in slices ([`run`]); the owner polls its progress
//! and, once done, gets a short-lived download link. A tenant sees only its own jobs.

pub mod run;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    aws::{
        blobs,
        queue::{self, QueuedJob},
    },
    db::statements::Cached,
    error::{AppError, AppResult},
    export::Export,
    ids::ExportId,
    tenant::TenantId,
    AppState,
};

/// Export jobs a tenant may have queued or running at once: each copies a whole list, and
/// they share the processor with every tenant's webhooks.
pub const MAX_IN_PROGRESS: i64 = 3;

/// A job that has not moved for this long has stopped (its message went to the dead-letter
/// queue after about an hour of retries): it is failed rather than shown running forever.
pub const STALLED_AFTER: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a download link is valid; ask again for a fresh one.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    Calls,
    Leads,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calls => "calls",
            Self::Leads => "leads",
        }
    }

    /// From the `exports.kind` column (a check constraint keeps it to these two).
    fn parse(stored: &str) -> Self {
        match stored {
            "leads" => Self::Leads,
            _ => Self::Calls,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    Failed,
    /// Done, but the file is gone (kept a day).
    Expired,
}

/// An export job as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportJob {
    pub id: Uuid,
    pub kind: ExportKind,
    pub status: ExportStatus,
    /// Rows in the file so far (all of them once done).
    pub rows_written: i64,
    /// Rows matching the filters, once the job has counted them: with `rows_written`, the
    /// progress.
    pub total_rows: Option<i64>,
    pub bytes_written: i64,
    /// How many times the processor has worked on it (each a bounded slice).
    pub slices: i32,
    pub file_name: String,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the file is deleted.
    pub expires_at: DateTime<Utc>,
    /// Once done: a presigned URL to the CSV (served as an attachment named `file_name`),
    /// valid until `download_expires_at`. Ask for the job again for a fresh one.
    pub download_url: Option<String>,
    pub download_expires_at: Option<DateTime<Utc>>,
}

impl ExportJob {
    fn from_row(row: &Row) -> AppResult<Self> {
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        let status = match row.try_get::<_, &str>("status")? {
            "queued" => ExportStatus::Queued,
            "running" => ExportStatus::Running,
            "failed" => ExportStatus::Failed,
            _ if expires_at <= Utc::now() => ExportStatus::Expired,
            _ => ExportStatus::Done,
        };
        Ok(Self {
            id: row.try_get("id")?,
            kind: ExportKind::parse(row.try_get("kind")?),
            status,
            rows_written: row.try_get("rows_written")?,
            total_rows: row.try_get("total_rows")?,
            bytes_written: row.try_get("bytes_written")?,
            slices: row.try_get("slices")?,
            file_name: row.try_get("file_name")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
            expires_at,
            download_url: None,
            download_expires_at: None,
        })
    }

    /// The path its owner polls.
    pub fn location(&self) -> String {
        format!("/api/exports/{}", self.id)
    }
}

/// Stores an export job for `export` (built from `filters`, which the job keeps to build it
/// again) and queues it; 429 while the tenant has [`MAX_IN_PROGRESS`] jobs in progress.
pub async fn create(
    state: &AppState,
    tenant: TenantId,
    kind: ExportKind,
    filters: &impl Serialize,
    export: &Export,
) -> AppResult<ExportJob> {
    let filters = serde_json::to_value(filters).map_err(AppError::internal)?;
    let id = Uuid::new_v4();
    let key = format!("exports/{}/{id}.csv", tenant.as_uuid());
    let mut db = state.db().get().await?;
    let tx = db.transaction().await?;
    // The tenant's concurrent requests count one after another: each counts in a statement
    // that starts once the one before has committed.
    tx.cached_execute(sql::LOCK_TENANT, &[tenant.as_uuid()])
        .await?;
    let created = tx
        .cached_query_opt(
            sql::CREATE_UNLESS_BUSY,
            &[
                &id,
                tenant.as_uuid(),
                &kind.as_str(),
                &filters,
                &export.download_name(Utc::now()),
                &key,
                &MAX_IN_PROGRESS,
            ],
        )
        .await?;
    tx.commit().await?;
    let Some(row) = created else {
        return Err(AppError::rate_limited(
            Duration::from_secs(30),
            "too many exports in progress; try again once one is done",
        ));
    };
    let job = ExportJob::from_row(&row)?;
    let queued = async {
        queue::send_job(
            state.aws(),
            state.webhook_queue_url()?,
            &QueuedJob::Export { export_id: id },
            0,
        )
        .await
    };
    if let Err(err) = queued.await {
        db.cached_query_opt(sql::FAIL, &[&id, &"could not be queued"])
            .await?;
        return Err(err);
    }
    Ok(job)
}

/// One of the tenant's export jobs, with a fresh download link once it is done; 404 for
/// anything else.
pub async fn find(state: &AppState, tenant: TenantId, id: ExportId) -> AppResult<ExportJob> {
    let db = state.db().get().await?;
    let row = db
        .cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .ok_or_else(|| AppError::not_found("export"))?;
    let mut job = ExportJob::from_row(&row)?;
    if job.status == ExportStatus::Done {
        let key: String = row.try_get("s3_key")?;
        let signed_at = Utc::now();
        job.download_url = Some(
            blobs::presigned_get(
                state.aws(),
                &state.config().aws.recordings_bucket,
                &key,
                signed_at.into(),
                DOWNLOAD_URL_TTL,
            )
            .await?,
        );
        job.download_expires_at =
            Some(signed_at + chrono::Duration::from_std(DOWNLOAD_URL_TTL).unwrap_or_default());
    }
    Ok(job)
}

pub mod sql {
    /// Every column of an export job, named: a statement answering `*` would fail on
    /// connections that prepared it before a deploy added a column.
    macro_rules! export_columns {
        () => {
            "id, user_id, kind, filters, status, file_name, s3_key, upload_id, parts, after_time,
            after_id, rows_written, bytes_written, total_rows, slices, failures, error, created_at,
            updated_at, finished_at, expires_at"
        };
    }

    crate::db::statements! {
        /// Not a key update: rows referring to the tenant can still be written meanwhile.
        pub const LOCK_TENANT = "SELECT FROM users WHERE id = $1 FOR NO KEY UPDATE";
        /// A file is kept a day (the bucket's lifecycle rule on exports/), counted from now
        /// until the job is done. Nothing when the tenant has `$7` jobs in progress.
        pub const CREATE_UNLESS_BUSY = concat!("INSERT INTO exports (id, user_id, kind, filters, file_name, s3_key, expires_at)
            SELECT $1, $2, $3, $4, $5, $6, now() + interval '1 day'
            WHERE (SELECT count(*) FROM exports WHERE user_id = $2 AND status IN ('queued', 'running')) < $7
            RETURNING ", export_columns!());
        pub const ONE_OF_TENANT = concat!("SELECT ", export_columns!(),
            " FROM exports WHERE id = $1 AND user_id = $2");
        pub const ONE = concat!("SELECT ", export_columns!(), " FROM exports WHERE id = $1");
        pub const START = "UPDATE exports SET status = 'running', upload_id = $2, total_rows = $3, updated_at = now()
            WHERE id = $1 AND status = 'queued'";
        /// Records an uploaded part and where the export stands after it, unless another run
        /// of the same job got there first (then nothing changes).
        pub const PROGRESS = "UPDATE exports SET parts = parts || $2::jsonb, after_time = $3, after_id = $4,
                rows_written = $5, bytes_written = $6, failures = 0, updated_at = now()
            WHERE id = $1 AND status = 'running' AND rows_written = $7 AND jsonb_array_length(parts) = $8";
        pub const SLICE_ENDED = "UPDATE exports SET slices = slices + 1, updated_at = now() WHERE id = $1";
        pub const FINISH = "UPDATE exports SET status = 'done', slices = slices + 1, finished_at = now(),
                expires_at = now() + interval '1 day', updated_at = now()
            WHERE id = $1 AND status = 'running'";
        pub const FAIL = "UPDATE exports SET status = 'failed', error = $2, finished_at = now(), updated_at = now()
            WHERE id = $1 AND status IN ('queued', 'running') RETURNING upload_id, s3_key";
        pub const FAIL_STALLED = "UPDATE exports SET status = 'failed', error = 'the export stopped',
                finished_at = now(), updated_at = now()
            WHERE status IN ('queued', 'running') AND updated_at < now() - make_interval(secs => $1)
            RETURNING id, upload_id, s3_key";
        pub const NOTE_FAILURE = "UPDATE exports SET failures = failures + 1, updated_at = now()
            WHERE id = $1 RETURNING failures";
    }
}
