//! AWS clients built from one aws-config. Locally the standard AWS_ENDPOINT_URL points every
//! client at the emulator (moto).

pub mod blobs;
pub mod cache;
pub mod counter;
pub mod queue;
pub mod secrets;

use aws_config::BehaviorVersion;

#[derive(Clone, Debug)]
pub struct Aws {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Aws {
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        // An emulator serves buckets by path, not by virtual host name.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        Self {
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
        }
    }
}

/// AWS SDK errors carry their service detail in Debug only; keep it for the log.
pub(crate) fn sdk_error(context: &str, err: impl std::fmt::Debug) -> crate::AppError {
    crate::AppError::unavailable("aws_unavailable", format!("{context}: {err:?}"))
}
