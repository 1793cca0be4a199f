//! Stripe Checkout: one call, creating the Checkout Session of a credit purchase, made with
//! the shared reqwest client in Stripe's wire format (form-encoded with bracketed keys, the
//! API version pinned). async-stripe did this before; its generated types were more than a
//! third of api-billing's binary for this one request. The base URL is configurable so the
//! same code runs against the local simulator. Every attempt carries the purchase's
//! idempotency key, so a retry after a network failure can never create a second session.

use std::time::Duration;

use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE},
    Url,
};
use serde::Deserialize;

/// The API version async-stripe 1.0.0-rc.10 pinned, which the webhook endpoint is created
/// with: the events we parse have this version's shapes.
const API_VERSION: &str = "2026-09-30.endive";

/// The currency codes Stripe charges in (async-stripe-types 1.0.0-rc.10's list), sorted.
const CURRENCIES: &[&str] = &[
    "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd", "bdt",
    "bgn", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad", "cdf", "chf",
    "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "eek", "egp", "etb",
    "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl", "hrk",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jpy", "kes", "kgs", "khr", "kmf", "krw",
    "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "ltl", "lvl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mro", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio",
    "nok", "npr", "nzd", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sll", "sos", "srd", "std", "svc",
    "szl", "thb", "tjs", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "usd", "uyu", "uzs",
    "vef", "vnd", "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
];

/// Whether `code` is a lower-case ISO 4217 code Stripe charges in.
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// What a purchase asks Stripe for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// Our purchase id: the idempotency key, `client_reference_id` and metadata.
    pub purchase_id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub product_name: String,
    pub amount: i64,
    pub currency: String,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Stripe answered with an error: no session exists for this purchase.
    #[error("Stripe refused the checkout session ({status}): {message}")]
    Refused {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
    },
    /// The request may or may not have reached Stripe (network failure, timeout, an answer we
    /// could not read): a session may exist.
    #[error("Stripe's answer is unknown: {0}")]
    Unknown(String),
    /// Our own request could not be built (a bad key or URL in configuration).
    #[error("the Stripe request could not be made: {0}")]
    Config(String),
}

impl CheckoutError {
    fn is_network(&self) -> bool {
        matches!(self, Self::Unknown(message) if !message.starts_with("unreadable answer"))
    }

    fn unreadable(err: impl std::fmt::Display) -> Self {
        Self::Unknown(format!("unreadable answer: {err}"))
    }
}

/// Stripe's error answer: `{"error": {"type": ..., "code": ..., "message": ...}}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: String,
    code: Option<String>,
    message: Option<String>,
}

/// The fields of the Session we use.
#[derive(Deserialize)]
struct SessionAnswer {
    id: String,
    url: Option<String>,
}

pub struct Stripe {
    http: reqwest::Client,
    endpoint: Url,
    authorization: HeaderValue,
    timeout: Duration,
}

impl Stripe {
    pub fn new(
        http: reqwest::Client,
        secret_key: &str,
        base_url: &Url,
        timeout: Duration,
    ) -> Result<Self, CheckoutError> {
        let mut authorization = HeaderValue::try_from(format!("Bearer {secret_key}"))
            .map_err(|_| CheckoutError::Config("the secret key is not a valid header".into()))?;
        authorization.set_sensitive(true);
        let base = base_url.as_str();
        let separator = if base.ends_with('/') { "" } else { "/" };
        let endpoint = Url::parse(&format!("{base}{separator}v1/checkout/sessions"))
            .map_err(|e| CheckoutError::Config(format!("bad Stripe base URL: {e}")))?;
        Ok(Self {
            http,
            endpoint,
            authorization,
            timeout,
        })
    }

    /// Creates the session; a network failure is retried once with the same idempotency key.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, CheckoutError> {
        let form = form(request)?;
        match self.attempt(request, &form).await {
            Err(err) if err.is_network() => {
                tracing::warn!(purchase_id = %request.purchase_id, error = %err, "retrying the checkout session once");
                self.attempt(request, &form).await
            }
            other => other,
        }
    }

    async fn attempt(
        &self,
        request: &CheckoutRequest,
        form: &str,
    ) -> Result<CheckoutSession, CheckoutError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header("stripe-version", API_VERSION)
            .header(
                "idempotency-key",
                format!("checkout:{}", request.purchase_id),
            )
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .timeout(self.timeout)
            .body(form.to_owned())
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        let body = response.bytes().await.map_err(network)?;
        if !status.is_success() {
            let answer: ErrorAnswer =
                serde_json::from_slice(&body).map_err(CheckoutError::unreadable)?;
            return Err(CheckoutError::Refused {
                status: status.as_u16(),
                kind: answer.error.kind,
                code: answer.error.code,
                message: answer.error.message.unwrap_or_default(),
            });
        }
        let session: SessionAnswer =
            serde_json::from_slice(&body).map_err(CheckoutError::unreadable)?;
        let url = session
            .url
            .ok_or_else(|| CheckoutError::Unknown("the session has no url".into()))?;
        Ok(CheckoutSession {
            id: session.id,
            url,
        })
    }
}

fn network(err: reqwest::Error) -> CheckoutError {
    if err.is_timeout() {
        CheckoutError::Unknown("timed out".into())
    } else {
        CheckoutError::Unknown(err.to_string())
    }
}

/// The session's parameters as Stripe's form: bracketed keys sent as they are (as Stripe's
/// own clients do), values percent-encoded.
fn form(request: &CheckoutRequest) -> Result<String, CheckoutError> {
    let currency = &request.currency;
    if !is_currency(currency) {
        return Err(CheckoutError::Config(format!(
            "unknown currency {currency}"
        )));
    }
    let purchase = request.purchase_id.to_string();
    let tenant = request.tenant_id.to_string();
    let amount = request.amount.to_string();
    let mut fields: Vec<(&str, &str)> = vec![
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", currency),
        ("line_items[0][price_data][unit_amount]", &amount),
        (
            "line_items[0][price_data][product_data][name]",
            &request.product_name,
        ),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", &purchase),
        ("metadata[purchase_id]", &purchase),
        ("metadata[tenant_id]", &tenant),
        ("payment_intent_data[metadata][purchase_id]", &purchase),
        ("payment_intent_data[metadata][tenant_id]", &tenant),
        ("success_url", &request.success_url),
        ("cancel_url", &request.cancel_url),
    ];
    if let Some(email) = &request.customer_email {
        fields.push(("customer_email", email));
    }
    let mut body = String::new();
    for (key, value) in fields {
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(key);
        body.push('=');
        body.extend(form_urlencoded::byte_serialize(value.as_bytes()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckoutRequest {
        CheckoutRequest {
            purchase_id: uuid::Uuid::nil(),
            tenant_id: uuid::Uuid::max(),
            product_name: "500 credits & more".into(),
            amount: 1000,
            currency: "usd".into(),
            customer_email: Some("a+b@example.com".into()),
            success_url: "https://app.example/ok?session_id={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "https://app.example/cancel".into(),
        }
    }

    #[test]
    fn the_form_has_stripes_bracketed_keys_and_encoded_values() {
        let body = form(&request()).expect("form");
        let nil = uuid::Uuid::nil();
        for expected in [
            "mode=payment".to_owned(),
            "line_items[0][price_data][currency]=usd".to_owned(),
            "line_items[0][price_data][unit_amount]=1000".to_owned(),
            "line_items[0][price_data][product_data][name]=500+credits+%26+more".to_owned(),
            "line_items[0][quantity]=1".to_owned(),
            format!("client_reference_id={nil}"),
            format!("payment_intent_data[metadata][purchase_id]={nil}"),
            format!("metadata[tenant_id]={}", uuid::Uuid::max()),
            "customer_email=a%2Bb%40example.com".to_owned(),
            "success_url=https%3A%2F%2Fapp.example%2Fok%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
                .to_owned(),
        ] {
            assert!(
                body.split('&').any(|pair| pair == expected),
                "{expected} in {body}"
            );
        }
    }

    #[test]
    fn a_currency_that_is_not_a_code_is_a_configuration_error() {
        for code in ["USD", "us dollars", "xyz", ""] {
            let mut bad = request();
            bad.currency = code.into();
            assert!(
                matches!(form(&bad), Err(CheckoutError::Config(_))),
                "{code}"
            );
        }
        assert!(
            CURRENCIES.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted"
        );
    }

    #[test]
    fn the_endpoint_is_under_v1_of_the_base() {
        crate::telemetry::install_crypto_provider();
        let http = reqwest::Client::new();
        let timeout = Duration::from_secs(1);
        for base in [
            "http://127.0.0.1:9/",
            "http://127.0.0.1:9",
            "https://x.test/stripe/",
        ] {
            let base = Url::parse(base).expect("url");
            let stripe = Stripe::new(http.clone(), "sk_test_1", &base, timeout).expect("client");
            assert!(stripe.endpoint.as_str().ends_with("/v1/checkout/sessions"));
            assert!(!stripe.endpoint.as_str().contains("//v1"));
        }
        let base = Url::parse("http://127.0.0.1:9").expect("url");
        assert!(matches!(
            Stripe::new(http, "sk\ntest", &base, timeout),
            Err(CheckoutError::Config(_))
        ));
    }
}
