//! AWS clients built from one SDK configuration taken from the environment: the region from
//! AWS_REGION (or AWS_DEFAULT_REGION), the credentials from AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (what Lambda gives a function), and locally
//! AWS_ENDPOINT_URL pointing every client at the emulator (moto). Retries (standard, 3
//! attempts) and the connect timeout are the SDK's defaults for its latest behavior version.
//! Requests go through reqwest ([`http`]), not the SDK's own HTTP client.
//! aws-config's chain (profile files, SSO, STS, IMDS, ECS) is not linked: none of it is used
//! on Lambda, and it was about 0.5 MB of every function.

pub mod blobs;
pub mod cache;
pub mod counter;
mod http;
pub mod multipart;
pub mod queue;
pub mod secrets;

use std::sync::{Arc, OnceLock};

use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
use aws_sdk_sqs::config::BehaviorVersion;
use aws_types::{region::Region, SdkConfig};

#[derive(Clone, Debug)]
pub struct Aws {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Aws {
    pub async fn from_env() -> Self {
        let shared = load_config();
        Self {
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: s3_client(&shared),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
        }
    }
}

fn load_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http::client());
    config.set_region(
        var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .map(Region::new),
    );
    if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "env");
        config.set_credentials_provider(Some(SharedCredentialsProvider::new(credentials)));
    }
    config.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    config.build()
}

fn s3_client(shared: &SdkConfig) -> aws_sdk_s3::Client {
    // An emulator serves buckets by path, not by virtual host name.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// The clients of [`Aws`], each built when first used (a cold start should not pay for a
/// client, or its HTTP client's TLS setup, before a request needs AWS), so that a function
/// links only the clients it uses. Clones share the clients.
#[derive(Clone, Default)]
pub struct LazyAws(Arc<Clients>);

#[derive(Default)]
struct Clients {
    config: OnceLock<SdkConfig>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
}

impl LazyAws {
    fn config(&self) -> &SdkConfig {
        self.0.config.get_or_init(load_config)
    }

    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        let config = self.config();
        self.0.sqs.get_or_init(|| aws_sdk_sqs::Client::new(config))
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        let config = self.config();
        self.0.s3.get_or_init(|| s3_client(config))
    }

    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        let config = self.config();
        self.0
            .dynamodb
            .get_or_init(|| aws_sdk_dynamodb::Client::new(config))
    }

    pub async fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        let config = self.config();
        self.0
            .secrets
            .get_or_init(|| aws_sdk_secretsmanager::Client::new(config))
    }
}

/// AWS SDK errors carry their service detail in Debug only; keep it for the log.
pub(crate) fn sdk_error(context: &str, err: impl std::fmt::Debug) -> crate::AppError {
    crate::AppError::unavailable("aws_unavailable", format!("{context}: {err:?}"))
}
