//! S3 objects: recordings and oversized webhook bodies; recordings are served as short-lived
//! presigned URLs.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::{presigning::PresigningConfig, primitives::ByteStream};

use super::sdk_error;
use crate::error::{AppError, AppResult};

pub async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> AppResult<()> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| sdk_error("storing an object", e))?;
    Ok(())
}

pub async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> AppResult<Vec<u8>> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error("reading an object", e))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| sdk_error("reading an object body", e))?;
    Ok(bytes.into_bytes().to_vec())
}

/// A GET link to the object, signed as of `signed_at` and valid for `expires_in` from then.
pub async fn presigned_get(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    signed_at: SystemTime,
    expires_in: Duration,
) -> AppResult<String> {
    let config = PresigningConfig::builder()
        .start_time(signed_at)
        .expires_in(expires_in)
        .build()
        .map_err(AppError::internal)?;
    let request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .map_err(|e| sdk_error("presigning an object", e))?;
    Ok(request.uri().to_owned())
}
