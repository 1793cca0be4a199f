//! AWS over signed HTTP: S3, SQS, DynamoDB and Secrets Manager called through reqwest (the
//! stack every function already links), each request signed with SigV4 by `aws-sigv4`,
//! instead of the generated SDK clients, whose runtime (orchestrator, interceptors, endpoint
//! rules, checksums, XML) was most of what AWS cost a function ([`signed`]). The region comes
//! from AWS_REGION (or AWS_DEFAULT_REGION), the credentials from AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (what Lambda gives a function), and locally
//! AWS_ENDPOINT_URL points every service at the emulator (moto).

pub mod blobs;
pub mod cache;
pub mod counter;
pub mod multipart;
pub mod queue;
pub mod secrets;
mod signed;
mod xml;

use std::sync::{Arc, OnceLock};

use serde::{de::DeserializeOwned, Serialize};
pub use signed::Service;

use crate::error::{AppError, AppResult};

/// The one AWS client, for every service. It reads the environment and builds its HTTP client
/// when first used: a cold start does not pay for it (or its TLS setup) before a request needs
/// AWS. Clones share it.
#[derive(Clone, Default)]
pub struct Client(Arc<OnceLock<signed::Endpoint>>);

impl Client {
    fn endpoint(&self) -> &signed::Endpoint {
        self.0
            .get_or_init(|| signed::Endpoint::from_lookup(|name| std::env::var(name).ok()))
    }

    /// Calls `operation` of a JSON service (SQS, DynamoDB, Secrets Manager) with `input`; its
    /// answer. Public for tests and tools that set up or inspect what the code uses.
    pub async fn json<T: DeserializeOwned>(
        &self,
        service: Service,
        operation: &'static str,
        input: &impl Serialize,
    ) -> AppResult<T> {
        let (prefix, content_type) = service.json_protocol().ok_or_else(|| {
            AppError::internal(format!("{} is not a JSON service", service.name()))
        })?;
        let endpoint = self.endpoint();
        let request = signed::Request {
            service,
            operation,
            method: reqwest::Method::POST,
            url: endpoint.json_url(service)?,
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("x-amz-target", format!("{prefix}.{operation}")),
            ],
            body: serde_json::to_vec(input)
                .map_err(AppError::internal)?
                .into(),
            error_in_ok: false,
        };
        let answer = endpoint.send(request).await?;
        let body: &[u8] = if answer.body.is_empty() {
            b"{}"
        } else {
            &answer.body
        };
        serde_json::from_slice(body).map_err(|e| {
            AppError::unavailable(
                "aws_unavailable",
                format!("{}.{operation}: unexpected answer: {e}", service.name()),
            )
        })
    }

    /// An S3 request for the object `key` of `bucket` (`query` added to its URL).
    async fn s3(&self, request: S3Request<'_>) -> AppResult<signed::Answer> {
        let endpoint = self.endpoint();
        let url = endpoint.s3_url(request.bucket, request.key, request.query)?;
        endpoint
            .send(signed::Request {
                service: Service::S3,
                operation: request.operation,
                method: request.method,
                url,
                headers: request.headers,
                body: request.body,
                error_in_ok: request.error_in_ok,
            })
            .await
    }
}

/// What [`Client::s3`] sends.
struct S3Request<'a> {
    operation: &'static str,
    method: reqwest::Method,
    bucket: &'a str,
    key: &'a str,
    query: &'a [(&'a str, &'a str)],
    headers: Vec<(&'static str, String)>,
    body: bytes::Bytes,
    error_in_ok: bool,
}

impl<'a> S3Request<'a> {
    fn new(
        operation: &'static str,
        method: reqwest::Method,
        bucket: &'a str,
        key: &'a str,
    ) -> Self {
        Self {
            operation,
            method,
            bucket,
            key,
            query: &[],
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            error_in_ok: false,
        }
    }
}
