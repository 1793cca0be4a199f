//! Stripe Checkout through async-stripe: one call, creating the Checkout Session of a credit
//! purchase. The base URL is configurable so the same code runs against the local simulator.
//! Every attempt carries the purchase's idempotency key, so a retry after a network failure
//! can never create a second session.

use std::{collections::HashMap, time::Duration};

use reqwest::Url;
use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::{
    checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionPaymentIntentData,
        ProductData,
    },
    CheckoutSessionMode,
};

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
    fn from_stripe(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(errors, status) => Self::Refused {
                status,
                kind: errors.type_.to_string(),
                code: errors.code.map(|c| c.to_string()),
                message: errors.message.unwrap_or_default(),
            },
            StripeError::ConfigError(message) => Self::Config(message),
            StripeError::ClientError(message) => Self::Unknown(message),
            StripeError::JSONDeserialize(message) => {
                Self::Unknown(format!("unreadable answer: {message}"))
            }
            StripeError::Timeout => Self::Unknown("timed out".into()),
        }
    }

    fn is_network(&self) -> bool {
        matches!(self, Self::Unknown(message) if !message.starts_with("unreadable answer"))
    }
}

pub struct Stripe {
    client: stripe::Client,
}

impl Stripe {
    pub fn new(secret_key: &str, base_url: &Url, timeout: Duration) -> Result<Self, CheckoutError> {
        let client = ClientBuilder::new(secret_key)
            .url(base_url.as_str())
            .timeout(timeout)
            .build()
            .map_err(CheckoutError::from_stripe)?;
        Ok(Self { client })
    }

    /// Creates the session; a network failure is retried once with the same idempotency key.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, CheckoutError> {
        match self.attempt(request).await {
            Err(err) if err.is_network() => {
                tracing::warn!(purchase_id = %request.purchase_id, error = %err, "retrying the checkout session once");
                self.attempt(request).await
            }
            other => other,
        }
    }

    async fn attempt(&self, request: &CheckoutRequest) -> Result<CheckoutSession, CheckoutError> {
        let key = IdempotencyKey::new(format!("checkout:{}", request.purchase_id))
            .map_err(|e| CheckoutError::Config(e.to_string()))?;
        let session = build(request)?
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(CheckoutError::from_stripe)?;
        let url = session
            .url
            .ok_or_else(|| CheckoutError::Unknown("the session has no url".into()))?;
        Ok(CheckoutSession {
            id: session.id.to_string(),
            url,
        })
    }
}

fn build(request: &CheckoutRequest) -> Result<CreateCheckoutSession, CheckoutError> {
    let currency = request
        .currency
        .parse::<stripe_types::Currency>()
        .map_err(|_| CheckoutError::Config(format!("unknown currency {}", request.currency)))?;
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
    price.unit_amount = Some(request.amount);
    price.product_data = Some(ProductData::new(request.product_name.clone()));
    let line = CreateCheckoutSessionLineItems {
        price_data: Some(price),
        quantity: Some(1),
        ..Default::default()
    };
    let metadata = HashMap::from([
        ("purchase_id".to_owned(), request.purchase_id.to_string()),
        ("tenant_id".to_owned(), request.tenant_id.to_string()),
    ]);
    let mut payment_intent = CreateCheckoutSessionPaymentIntentData::new();
    payment_intent.metadata = Some(metadata.clone());
    let mut session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![line])
        .client_reference_id(request.purchase_id.to_string())
        .metadata(metadata)
        .payment_intent_data(payment_intent)
        .success_url(request.success_url.clone())
        .cancel_url(request.cancel_url.clone());
    if let Some(email) = &request.customer_email {
        session = session.customer_email(email.clone());
    }
    Ok(session)
}
