//! S3 objects: recordings and oversized webhook bodies; recordings are served as short-lived
//! presigned URLs.

use std::time::{Duration, SystemTime};

use reqwest::Method;

use super::{Client, S3Request};
use crate::error::AppResult;

pub async fn put(
    client: &Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> AppResult<()> {
    let mut request = S3Request::new("PutObject", Method::PUT, bucket, key);
    request
        .headers
        .push(("content-type", content_type.to_owned()));
    request.body = bytes.into();
    client.s3(request).await?;
    Ok(())
}

pub async fn get(client: &Client, bucket: &str, key: &str) -> AppResult<Vec<u8>> {
    let request = S3Request::new("GetObject", Method::GET, bucket, key);
    Ok(client.s3(request).await?.body.to_vec())
}

/// A GET link to the object, signed as of `signed_at` and valid for `expires_in` from then.
pub async fn presigned_get(
    client: &Client,
    bucket: &str,
    key: &str,
    signed_at: SystemTime,
    expires_in: Duration,
) -> AppResult<String> {
    let endpoint = client.endpoint();
    endpoint.presign(&endpoint.s3_url(bucket, key, &[])?, signed_at, expires_in)
}
