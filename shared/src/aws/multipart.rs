//! S3 multipart uploads: a big object written a part at a time (every part but the last at
//! least 5 MiB), so the writer never holds more than one part. An upload can span processes:
//! its id and the parts' ETags are all it takes to continue or complete it.

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use serde::{Deserialize, Serialize};

use super::sdk_error;
use crate::error::AppResult;

/// S3's smallest part (but the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// An uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    #[serde(rename = "n")]
    pub number: i32,
    pub etag: String,
}

/// Starts an upload; its id. `disposition` is the object's `Content-Disposition`, which a
/// download (a presigned URL included) is answered with.
pub async fn start(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    content_type: &str,
    disposition: &str,
) -> AppResult<String> {
    let output = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .content_disposition(disposition)
        .send()
        .await
        .map_err(|e| sdk_error("starting an upload", e))?;
    output
        .upload_id
        .ok_or_else(|| sdk_error("starting an upload", "no upload id"))
}

pub async fn upload_part(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: i32,
    bytes: Vec<u8>,
) -> AppResult<Part> {
    let output = client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| sdk_error("uploading a part", e))?;
    Ok(Part {
        number,
        etag: output
            .e_tag
            .ok_or_else(|| sdk_error("uploading a part", "no ETag"))?,
    })
}

pub async fn complete(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[Part],
) -> AppResult<()> {
    let parts = parts
        .iter()
        .map(|part| {
            CompletedPart::builder()
                .part_number(part.number)
                .e_tag(&part.etag)
                .build()
        })
        .collect();
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("completing an upload", e))?;
    Ok(())
}

/// Drops an upload's parts (a failed export); the bucket's lifecycle rule also aborts any
/// upload left incomplete.
pub async fn abort(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> AppResult<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| sdk_error("aborting an upload", e))?;
    Ok(())
}
