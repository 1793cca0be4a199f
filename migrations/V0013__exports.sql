-- CSV exports too big to answer inline: a job the processor runs in slices, writing the file to
-- S3 as a multipart upload (exports/<user>/<id>.csv) and handed out as a presigned URL. Between
-- slices the job keeps where it stands: the keyset position of the last row written, the parts
-- uploaded so far and the upload they belong to, so the next slice (or a retry after a crash)
-- continues after the last uploaded part.
CREATE TABLE exports (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id),
    kind                text NOT NULL CHECK (kind IN ('calls', 'leads')),
    -- The list filters the export was asked with, as the API reads them.
    filters             jsonb NOT NULL,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    file_name           text NOT NULL,
    s3_key              text NOT NULL,
    upload_id           text,
    -- [{"n": part number, "etag": ...}] in part order.
    parts               jsonb NOT NULL DEFAULT '[]',
    after_time          timestamptz,
    after_id            uuid,
    rows_written        bigint NOT NULL DEFAULT 0,
    bytes_written       bigint NOT NULL DEFAULT 0,
    -- Matching rows, counted by the first slice.
    total_rows          bigint,
    slices              integer NOT NULL DEFAULT 0,
    -- Consecutive failed slices; the job is failed past a bound.
    failures            integer NOT NULL DEFAULT 0,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    -- When the file is gone (the bucket's lifecycle rule on exports/ removes it).
    expires_at          timestamptz NOT NULL
);
CREATE INDEX exports_user_idx ON exports (user_id, created_at DESC);
