//! AWS clients built from one aws-config. Locally the standard AWS_ENDPOINT_URL points every
//! client at the emulator (moto).

pub mod blobs;
pub mod cache;
pub mod counter;
pub mod multipart;
pub mod queue;
pub mod secrets;

use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Clone, Debug)]
pub struct Aws {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Aws {
    pub async fn from_env() -> Self {
        let shared = load_config().await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: s3_client(&shared),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
        }
    }
}

async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

fn s3_client(shared: &SdkConfig) -> aws_sdk_s3::Client {
    // An emulator serves buckets by path, not by virtual host name.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// The clients of [`Aws`], each built when first used, from one aws-config loaded then:
/// loading it reads the profile files and the system's root certificates (for the SDK's HTTPS
/// client), which a cold start should not pay before a request needs AWS; and a function
/// links only the clients it uses. Clones share the clients.
#[derive(Clone, Default)]
pub struct LazyAws(Arc<Clients>);

#[derive(Default)]
struct Clients {
    config: tokio::sync::OnceCell<SdkConfig>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
}

impl LazyAws {
    async fn config(&self) -> &SdkConfig {
        self.0.config.get_or_init(load_config).await
    }

    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        let config = self.config().await;
        self.0.sqs.get_or_init(|| aws_sdk_sqs::Client::new(config))
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        let config = self.config().await;
        self.0.s3.get_or_init(|| s3_client(config))
    }

    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        let config = self.config().await;
        self.0
            .dynamodb
            .get_or_init(|| aws_sdk_dynamodb::Client::new(config))
    }

    pub async fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        let config = self.config().await;
        self.0
            .secrets
            .get_or_init(|| aws_sdk_secretsmanager::Client::new(config))
    }
}

/// AWS SDK errors carry their service detail in Debug only; keep it for the log.
pub(crate) fn sdk_error(context: &str, err: impl std::fmt::Debug) -> crate::AppError {
    crate::AppError::unavailable("aws_unavailable", format!("{context}: {err:?}"))
}
