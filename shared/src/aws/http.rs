//! The AWS SDK's HTTP client: reqwest, the stack every function already links for its other
//! calls (HTTP/1.1 over rustls with the process's aws-lc-rs provider and the webpki roots),
//! instead of the SDK's own hyper client, which also links HTTP/2, a connection pool of its own
//! and the system's certificate loader. The SDK's timeouts (connect, and read when configured)
//! are applied per connector, as its own client does; redirects are the SDK's to see.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    },
    orchestrator::{HttpRequest, HttpResponse},
    result::ConnectorError,
    runtime_components::RuntimeComponents,
};
use aws_smithy_types::body::SdkBody;

pub(super) fn client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient::default())
}

type Timeouts = (Option<Duration>, Option<Duration>);

#[derive(Debug, Default)]
struct ReqwestClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        self.connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts)))
            .clone()
    }
}

#[derive(Debug)]
struct Connector(Result<reqwest::Client, String>);

impl Connector {
    fn new((connect, read): Timeouts) -> Self {
        crate::telemetry::install_crypto_provider();
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(timeout) = connect {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = read {
            builder = builder.read_timeout(timeout);
        }
        Self(builder.build().map_err(|e| e.to_string()))
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.0 {
            Ok(client) => client.clone(),
            Err(e) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::user(e.clone().into())))
            }
        };
        let request = match request
            .try_into_http1x()
            .map_err(Into::into)
            .and_then(|request| {
                reqwest::Request::try_from(request.map(reqwest::Body::wrap)).map_err(Into::into)
            }) {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e))),
        };
        HttpConnectorFuture::new(async move {
            let response = client.execute(request).await.map_err(connector_error)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// As the SDK's own client classifies its errors: timeouts and failures to connect or to
/// exchange the request are transient (retried); a request that cannot be built is not.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_builder() {
        ConnectorError::user(err.into())
    } else {
        ConnectorError::io(err.into())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use aws_sdk_sqs::error::SdkError;

    /// An endpoint that refuses connections fails as I/O, the class the SDK retries.
    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_io_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "key", "secret", None, None, "test",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .http_client(super::client())
            .build();
        let err = aws_sdk_sqs::Client::from_conf(config)
            .list_queues()
            .send()
            .await
            .expect_err("nothing listens there");
        match err {
            SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{failure:?}"),
            other => panic!("expected a dispatch failure, got {other:?}"),
        }
    }
}
