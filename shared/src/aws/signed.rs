//! One AWS request: where it goes, its SigV4 signature (`aws-sigv4`), and its sending with the
//! SDK's standard retries (3 attempts; throttling, 5xx and transport failures retried, with
//! exponential backoff and jitter from [`crate::clients::retry`]). Each operation runs in one
//! span (target `aws`, fields `service` and `operation`), retries included.

use std::{
    borrow::Cow,
    time::{Duration, SystemTime},
};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SignatureLocation, SigningSettings, UriPathNormalizationMode,
    },
    sign::v4,
};
use bytes::Bytes;
use reqwest::{header::HeaderMap, Method, StatusCode};
use tracing::Instrument;

use super::xml;
use crate::{
    clients::retry::{self, Failure, Idempotency},
    config::RetryPolicy,
    error::{AppError, AppResult},
};

/// The SDK's standard mode: 3 attempts. Its backoff starts at up to 1 s; ours at about 200 ms,
/// as a webhook's sender waits on the queue send.
const POLICY: RetryPolicy = RetryPolicy {
    timeout: Duration::from_secs(30),
    max_retries: 2,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(5),
};

/// The SDK's connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// Error codes the SDK's standard mode retries whatever the status (throttling answers come
/// as 400 from the JSON services).
const RETRIED_CODES: [&str; 17] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    S3,
    Sqs,
    DynamoDb,
    SecretsManager,
}

impl Service {
    /// As in the SDK's operation spans (`SQS.SendMessage`).
    pub fn name(self) -> &'static str {
        match self {
            Self::S3 => "S3",
            Self::Sqs => "SQS",
            Self::DynamoDb => "DynamoDB",
            Self::SecretsManager => "SecretsManager",
        }
    }

    /// The name it signs with and its endpoint's first label.
    fn signing_name(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Sqs => "sqs",
            Self::DynamoDb => "dynamodb",
            Self::SecretsManager => "secretsmanager",
        }
    }

    /// The JSON protocol's target prefix and content type; S3 is REST and XML.
    pub(super) fn json_protocol(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::S3 => None,
            Self::Sqs => Some(("AmazonSQS", "application/x-amz-json-1.0")),
            Self::DynamoDb => Some(("DynamoDB_20120810", "application/x-amz-json-1.0")),
            Self::SecretsManager => Some(("secretsmanager", "application/x-amz-json-1.1")),
        }
    }
}

/// Where requests go and what signs them, read from the environment once.
pub(super) struct Endpoint {
    http: Result<reqwest::Client, String>,
    region: Option<String>,
    credentials: Option<Credentials>,
    /// `AWS_ENDPOINT_URL` (the emulator), without a trailing slash: every service is there,
    /// and S3 serves buckets by path.
    custom: Option<String>,
}

impl Endpoint {
    pub(super) fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        crate::telemetry::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(POLICY.timeout)
            .build()
            .map_err(|e| e.to_string());
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => Some(Credentials::new(
                key,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "env",
            )),
            _ => None,
        };
        Self {
            http,
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            credentials,
            custom: var("AWS_ENDPOINT_URL").map(|url| url.trim_end_matches('/').to_owned()),
        }
    }

    fn region(&self) -> AppResult<&str> {
        self.region
            .as_deref()
            .ok_or_else(|| unavailable("no AWS region (AWS_REGION) is configured"))
    }

    fn credentials(&self) -> AppResult<&Credentials> {
        self.credentials
            .as_ref()
            .ok_or_else(|| unavailable("no AWS credentials (AWS_ACCESS_KEY_ID) are configured"))
    }

    /// A JSON service's one URL.
    pub(super) fn json_url(&self, service: Service) -> AppResult<String> {
        Ok(match &self.custom {
            Some(custom) => format!("{custom}/"),
            None => format!(
                "https://{}.{}.amazonaws.com/",
                service.signing_name(),
                self.region()?
            ),
        })
    }

    /// An object's URL (virtual-hosted on AWS, by path on the emulator), with `query`.
    pub(super) fn s3_url(
        &self,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
    ) -> AppResult<String> {
        let key = uri_encode(key, true);
        let mut url = match &self.custom {
            Some(custom) => format!("{custom}/{bucket}/{key}"),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region()?),
        };
        append_query(&mut url, query.iter().map(|(k, v)| (*k, *v)));
        Ok(url)
    }

    /// `url` (an S3 GET) signed in its query as of `at`, valid for `expires_in` from then.
    pub(super) fn presign(
        &self,
        url: &str,
        at: SystemTime,
        expires_in: Duration,
    ) -> AppResult<String> {
        let mut settings = settings(Service::S3);
        settings.signature_location = SignatureLocation::QueryParams;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        settings.expires_in = Some(expires_in);
        let request = SignableRequest::new(
            "GET",
            url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| AppError::internal(format!("presigning: {e}")))?;
        let (instructions, _) = self.sign(Service::S3, request, settings, at)?;
        let mut url = url.to_owned();
        append_query(
            &mut url,
            instructions.params().iter().map(|(k, v)| (*k, v.as_ref())),
        );
        Ok(url)
    }

    fn sign(
        &self,
        service: Service,
        request: SignableRequest<'_>,
        settings: SigningSettings,
        at: SystemTime,
    ) -> AppResult<(aws_sigv4::http_request::SigningInstructions, String)> {
        let identity = self.credentials()?.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region()?)
            .name(service.signing_name())
            .time(at)
            .settings(settings)
            .build()
            .map_err(|e| AppError::internal(format!("signing: {e}")))?
            .into();
        Ok(sign(request, &params)
            .map_err(|e| AppError::internal(format!("signing: {e}")))?
            .into_parts())
    }

    /// The headers that sign `request` as of `at`.
    pub(super) fn signature_headers(
        &self,
        request: &Request,
        at: SystemTime,
    ) -> AppResult<Vec<(&'static str, String)>> {
        let hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &request.body,
        ));
        let signable = SignableRequest::new(
            request.method.as_str(),
            request.url.as_str(),
            request
                .headers
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
            SignableBody::Precomputed(hash),
        )
        .map_err(|e| AppError::internal(format!("signing: {e}")))?;
        let (instructions, _) =
            self.sign(request.service, signable, settings(request.service), at)?;
        let (headers, _) = instructions.into_parts();
        Ok(headers
            .into_iter()
            .map(|header| (header.name(), header.value().to_owned()))
            .collect())
    }

    /// Sends `request` until it succeeds or the retries run out; its answer read whole.
    pub(super) async fn send(&self, request: Request) -> AppResult<Answer> {
        let span = tracing::debug_span!(
            target: "aws",
            "aws",
            service = request.service.name(),
            operation = request.operation
        );
        self.send_retrying(&request).instrument(span).await
    }

    async fn send_retrying(&self, request: &Request) -> AppResult<Answer> {
        let http = self.http.as_ref().map_err(|e| unavailable(e.clone()))?;
        // One signature serves every attempt: it is valid for five minutes.
        let signature = self.signature_headers(request, SystemTime::now())?;
        let mut retries = 0;
        loop {
            let failed = match attempt(http, request, &signature).await {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            let error = failed.error(request);
            if retries >= POLICY.max_retries || !failed.retryable() {
                return Err(error);
            }
            let Some(delay) = retry::delay(&POLICY, retries, failed.wait) else {
                return Err(error);
            };
            tracing::info!(error = %error, ?delay, "retrying an AWS request");
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }
}

fn settings(service: Service) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == Service::S3 {
        // S3 signs the path as sent, and wants the payload's hash in a header.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    settings
}

/// A request to send: `url` already encoded, `headers` those to sign besides the signature's.
pub(super) struct Request {
    pub service: Service,
    pub operation: &'static str,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// S3 can answer 200 with an error document (CompleteMultipartUpload).
    pub error_in_ok: bool,
}

/// A successful answer.
pub(super) struct Answer {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What an attempt failed with.
struct Failed {
    failure: Failure,
    status: Option<StatusCode>,
    code: Option<String>,
    message: String,
    wait: Option<Duration>,
}

impl Failed {
    fn retryable(&self) -> bool {
        retry::is_retryable(self.failure, Idempotency::Safe)
            || self
                .code
                .as_deref()
                .is_some_and(|code| RETRIED_CODES.contains(&code))
    }

    fn error(&self, request: &Request) -> AppError {
        let status = self
            .status
            .map_or_else(String::new, |status| format!(" {}", status.as_u16()));
        let code = self
            .code
            .as_deref()
            .map_or_else(String::new, |code| format!(" {code}"));
        unavailable(format!(
            "{}.{}:{status}{code}: {}",
            request.service.name(),
            request.operation,
            self.message
        ))
    }
}

async fn attempt(
    http: &reqwest::Client,
    request: &Request,
    signature: &[(&'static str, String)],
) -> Result<Answer, Failed> {
    let mut builder = http
        .request(request.method.clone(), &request.url)
        .body(request.body.clone());
    for (name, value) in request.headers.iter().chain(signature) {
        builder = builder.header(*name, value);
    }
    let transport = |err: reqwest::Error| Failed {
        failure: if err.is_connect() {
            Failure::Connect
        } else {
            Failure::Timeout
        },
        status: None,
        code: None,
        message: err.to_string(),
        wait: None,
    };
    let response = builder.send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(transport)?;
    let error_document = status.is_success()
        && request.error_in_ok
        && xml::text_of(&String::from_utf8_lossy(&body), "Code").is_some();
    if status.is_success() && !error_document {
        return Ok(Answer { headers, body });
    }
    let (code, message) = error_detail(request.service, &headers, &body);
    Err(Failed {
        // An error in a 200 is S3's internal error.
        failure: Failure::Status(if error_document {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            status
        }),
        status: Some(status),
        code,
        message,
        wait: retry::server_wait(&headers),
    })
}

/// The error's code and message: a JSON service's `__type` (`namespace#Code`) and `message`,
/// S3's `<Code>` and `<Message>`.
fn error_detail(service: Service, headers: &HeaderMap, body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    if service == Service::S3 {
        let message = xml::text_of(&text, "Message").unwrap_or_default();
        return (xml::text_of(&text, "Code"), message);
    }
    let document: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let field = |name: &str| {
        document
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let code = field("__type").or(header).map(|raw| {
        let code = raw.rsplit('#').next().unwrap_or(&raw);
        code.split(':').next().unwrap_or(code).to_owned()
    });
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_default();
    (code, message)
}

fn unavailable(message: impl Into<Cow<'static, str>>) -> AppError {
    AppError::unavailable("aws_unavailable", message.into().into_owned())
}

/// SigV4's URI encoding: every byte but the unreserved characters (and `/` in a path) as %XX.
pub(super) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(char::from(byte));
            }
            b'/' if keep_slash => encoded.push('/'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

fn append_query<'a>(url: &mut String, params: impl Iterator<Item = (&'a str, &'a str)>) {
    for (name, value) in params {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&uri_encode(name, false));
        if !value.is_empty() {
            url.push('=');
            url.push_str(&uri_encode(value, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's example credentials, as in its SigV4 documentation.
    fn example(custom: Option<&str>, token: Option<&str>) -> Endpoint {
        let custom = custom.map(str::to_owned);
        let token = token.map(str::to_owned);
        Endpoint::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIAIOSFODNN7EXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            "AWS_SESSION_TOKEN" => token.clone(),
            "AWS_REGION" => Some("us-east-1".into()),
            "AWS_ENDPOINT_URL" => custom.clone(),
            _ => None,
        })
    }

    fn at_example_time() -> SystemTime {
        // 2013-05-24T00:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn request(
        service: Service,
        method: Method,
        url: &str,
        headers: &[(&'static str, &str)],
        body: &'static [u8],
    ) -> Request {
        Request {
            service,
            operation: "Test",
            method,
            url: url.to_owned(),
            headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
            body: Bytes::from_static(body),
            error_in_ok: false,
        }
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// S3's documented GET Object example: the signature it publishes.
    #[test]
    fn signs_an_s3_request_as_the_documentation_does() {
        let get = request(
            Service::S3,
            Method::GET,
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range", "bytes=0-9")],
            b"",
        );
        let headers = example(None, None)
            .signature_headers(&get, at_example_time())
            .expect("signed");
        assert_eq!(
            header(&headers, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(header(&headers, "x-amz-date"), Some("20130524T000000Z"));
    }

    /// S3's documented presigned URL example.
    #[test]
    fn presigns_an_s3_get_as_the_documentation_does() {
        let url = example(None, None)
            .presign(
                "https://examplebucket.s3.amazonaws.com/test.txt",
                at_example_time(),
                Duration::from_secs(86_400),
            )
            .expect("presigned");
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn a_json_request_signs_its_target_and_carries_the_session_token() {
        let endpoint = example(None, Some("session"));
        let url = endpoint.json_url(Service::Sqs).expect("url");
        assert_eq!(url, "https://sqs.us-east-1.amazonaws.com/");
        let send = request(
            Service::Sqs,
            Method::POST,
            &url,
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "AmazonSQS.SendMessage"),
            ],
            b"{}",
        );
        let headers = endpoint
            .signature_headers(&send, at_example_time())
            .expect("signed");
        let authorization = header(&headers, "authorization").expect("authorization");
        assert!(
            authorization.contains("/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"),
            "{authorization}"
        );
        assert_eq!(header(&headers, "x-amz-security-token"), Some("session"));
        assert_eq!(header(&headers, "x-amz-content-sha256"), None, "S3's alone");
    }

    #[test]
    fn no_credentials_or_region_is_an_error_not_an_unsigned_request() {
        let endpoint =
            Endpoint::from_lookup(|name| (name == "AWS_REGION").then(|| "eu-west-1".into()));
        let get = request(
            Service::S3,
            Method::GET,
            "https://b.s3.eu-west-1.amazonaws.com/k",
            &[],
            b"",
        );
        assert!(endpoint.signature_headers(&get, SystemTime::now()).is_err());
        let endpoint = Endpoint::from_lookup(|_| None);
        assert!(endpoint.json_url(Service::DynamoDb).is_err());
    }

    #[test]
    fn objects_are_virtual_hosted_on_aws_and_by_path_on_the_emulator() {
        let key = "exports/t 1/ü+a.csv";
        assert_eq!(
            example(None, None)
                .s3_url(
                    "bucket",
                    key,
                    &[("partNumber", "2"), ("uploadId", "a/b+c=")]
                )
                .expect("url"),
            "https://bucket.s3.us-east-1.amazonaws.com/exports/t%201/%C3%BC%2Ba.csv\
             ?partNumber=2&uploadId=a%2Fb%2Bc%3D"
        );
        assert_eq!(
            example(Some("http://127.0.0.1:5000/"), None)
                .s3_url("bucket", "k", &[("uploads", "")])
                .expect("url"),
            "http://127.0.0.1:5000/bucket/k?uploads"
        );
        assert_eq!(
            example(Some("http://127.0.0.1:5000"), None)
                .json_url(Service::SecretsManager)
                .expect("url"),
            "http://127.0.0.1:5000/"
        );
    }

    #[test]
    fn reads_each_protocols_error_and_retries_what_the_sdk_retries() {
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#;
        let (code, message) = error_detail(Service::DynamoDb, &HeaderMap::new(), json);
        assert_eq!(
            code.as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
        assert_eq!(message, "slow down");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            "ResourceNotFoundException:http://internal.amazon.com/"
                .parse()
                .expect("value"),
        );
        let (code, _) = error_detail(Service::SecretsManager, &headers, b"");
        assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
        let (code, message) = error_detail(
            Service::S3,
            &HeaderMap::new(),
            b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>",
        );
        assert_eq!(
            (code.as_deref(), message.as_str()),
            (Some("NoSuchKey"), "gone")
        );

        let failed = |status: u16, code: Option<&str>| Failed {
            failure: Failure::Status(StatusCode::from_u16(status).expect("status")),
            status: None,
            code: code.map(str::to_owned),
            message: String::new(),
            wait: None,
        };
        assert!(failed(400, Some("ThrottlingException")).retryable());
        assert!(failed(503, Some("SlowDown")).retryable());
        assert!(failed(500, None).retryable());
        assert!(!failed(400, Some("ConditionalCheckFailedException")).retryable());
        assert!(!failed(404, Some("NoSuchKey")).retryable());
        assert!(!failed(403, Some("AccessDenied")).retryable());
    }
}

#[cfg(test)]
mod sending {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, OnceLock,
    };

    use serde_json::{json, Value};

    use super::*;
    use crate::aws::{multipart, Client};

    /// A client of a local server that answers each request with the next of `answers`
    /// (status, body; the last one repeated); how many requests it got.
    async fn serving(answers: Vec<(u16, &'static str)>) -> (Client, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        let app = axum::Router::new().fallback(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answers[n.min(answers.len() - 1)];
            async move { (StatusCode::from_u16(status).expect("status"), body) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (client_of(&url), count)
    }

    fn client_of(url: &str) -> Client {
        let url = url.to_owned();
        let endpoint = Endpoint::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
            "AWS_REGION" => Some("us-east-1".into()),
            "AWS_ENDPOINT_URL" => Some(url.clone()),
            _ => None,
        });
        Client(Arc::new(OnceLock::from(endpoint)))
    }

    #[tokio::test]
    async fn server_errors_and_throttling_are_retried_until_an_answer() {
        let throttled = r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"slow"}"#;
        let (client, count) = serving(vec![
            (500, ""),
            (400, throttled),
            (200, r#"{"MessageId":"m"}"#),
        ])
        .await;
        let answer: Value = client
            .json(Service::Sqs, "SendMessage", &json!({}))
            .await
            .expect("the third attempt answers");
        assert_eq!(answer["MessageId"], "m");
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_keeps_the_services_code_and_message() {
        let invalid = r#"{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"bad"}"#;
        let (client, count) = serving(vec![(400, invalid)]).await;
        let err = client
            .json::<Value>(Service::Sqs, "SendMessage", &json!({}))
            .await
            .expect_err("refused");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let logged = format!("{err:?}");
        assert!(
            logged.contains("SQS.SendMessage: 400 InvalidParameterValue: bad"),
            "{logged}"
        );
    }

    #[tokio::test]
    async fn three_failed_attempts_are_an_error() {
        let (client, count) = serving(vec![(503, "")]).await;
        let err = client
            .json::<Value>(Service::DynamoDb, "GetItem", &json!({}))
            .await
            .expect_err("unavailable");
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(
            (err.status, err.code),
            (StatusCode::BAD_GATEWAY, "aws_unavailable")
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let client = client_of(&format!("http://127.0.0.1:{port}"));
        let started = std::time::Instant::now();
        let err = client
            .json::<Value>(Service::SecretsManager, "GetSecretValue", &json!({}))
            .await
            .expect_err("nothing listens there");
        assert!(format!("{err:?}").contains("SecretsManager.GetSecretValue"));
        // Two waits of about 200 and 400 ms (±20 %) between the three attempts.
        assert!(
            started.elapsed() >= Duration::from_millis(480),
            "{:?}",
            started.elapsed()
        );
    }

    /// S3 can fail a completion after answering 200: the answer's error is retried.
    #[tokio::test]
    async fn an_error_document_in_a_completions_200_is_retried() {
        let (client, count) = serving(vec![
            (
                200,
                "<Error><Code>InternalError</Code><Message>retry</Message></Error>",
            ),
            (
                200,
                "<CompleteMultipartUploadResult><ETag>\"e\"</ETag></CompleteMultipartUploadResult>",
            ),
        ])
        .await;
        multipart::complete(&client, "bucket", "key", "upload", &[])
            .await
            .expect("completed on the second attempt");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
