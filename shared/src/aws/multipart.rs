//! S3 multipart uploads: a big object written a part at a time (every part but the last at
//! least 5 MiB), so the writer never holds more than one part. An upload can span processes:
//! its id and the parts' ETags are all it takes to continue or complete it.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{xml, Client, S3Request};
use crate::error::{AppError, AppResult};

/// S3's smallest part (but the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// An uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    #[serde(rename = "n")]
    pub number: i32,
    pub etag: String,
}

fn missing(what: &str) -> AppError {
    AppError::unavailable("aws_unavailable", format!("S3 answered without {what}"))
}

/// Starts an upload; its id. `disposition` is the object's `Content-Disposition`, which a
/// download (a presigned URL included) is answered with.
pub async fn start(
    client: &Client,
    bucket: &str,
    key: &str,
    content_type: &str,
    disposition: &str,
) -> AppResult<String> {
    let mut request = S3Request::new("CreateMultipartUpload", Method::POST, bucket, key);
    request.query = &[("uploads", "")];
    request.headers = vec![
        ("content-type", content_type.to_owned()),
        ("content-disposition", disposition.to_owned()),
    ];
    let answer = client.s3(request).await?;
    xml::text_of(&String::from_utf8_lossy(&answer.body), "UploadId")
        .ok_or_else(|| missing("an upload id"))
}

pub async fn upload_part(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: i32,
    bytes: Vec<u8>,
) -> AppResult<Part> {
    let number_text = number.to_string();
    let query = [
        ("partNumber", number_text.as_str()),
        ("uploadId", upload_id),
    ];
    let mut request = S3Request::new("UploadPart", Method::PUT, bucket, key);
    request.query = &query;
    request.body = bytes.into();
    let answer = client.s3(request).await?;
    let etag = answer
        .headers
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| missing("an ETag"))?;
    Ok(Part {
        number,
        etag: etag.to_owned(),
    })
}

pub async fn complete(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[Part],
) -> AppResult<()> {
    let query = [("uploadId", upload_id)];
    let mut request = S3Request::new("CompleteMultipartUpload", Method::POST, bucket, key);
    request.query = &query;
    request.body = completion(parts).into();
    request.error_in_ok = true;
    client.s3(request).await?;
    Ok(())
}

/// CompleteMultipartUpload's body: the parts in order.
fn completion(parts: &[Part]) -> String {
    let mut body = String::from(
        r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    for part in parts {
        body.push_str(&format!(
            "<Part><ETag>{}</ETag><PartNumber>{}</PartNumber></Part>",
            xml::escape(&part.etag),
            part.number
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// Drops an upload's parts (a failed export); the bucket's lifecycle rule also aborts any
/// upload left incomplete.
pub async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) -> AppResult<()> {
    let query = [("uploadId", upload_id)];
    let mut request = S3Request::new("AbortMultipartUpload", Method::DELETE, bucket, key);
    request.query = &query;
    client.s3(request).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_completion_lists_the_parts_in_order_with_their_etags() {
        let parts = [
            Part {
                number: 1,
                etag: "\"a1\"".into(),
            },
            Part {
                number: 2,
                etag: "\"b2\"".into(),
            },
        ];
        assert_eq!(
            completion(&parts),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Part><ETag>\"a1\"</ETag><PartNumber>1</PartNumber></Part>\
             <Part><ETag>\"b2\"</ETag><PartNumber>2</PartNumber></Part>\
             </CompleteMultipartUpload>"
        );
    }
}
