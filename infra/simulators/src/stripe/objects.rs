//! Builders for the Stripe objects the simulator returns and sends: Checkout Sessions, Charges
//! and event envelopes. Objects carry every field Stripe's OpenAPI fixtures (and async-stripe's
//! strict deserializers) expect, null where a hosted one-off payment has nothing to say.

use serde_json::{json, Map, Value};

use super::random_id;

/// The API version events are rendered with (what async-stripe 1.0.0-rc.10 pins).
pub const API_VERSION: &str = "2026-09-30.endive";
/// Checkout Sessions expire this long after creation unless `expires_at` says otherwise.
pub const SESSION_LIFETIME_SECS: i64 = 24 * 3600;
/// A line item given as `price=<id>` stands for a Price of this amount (the simulator has no
/// Price objects to look up).
pub const SIM_PRICE_UNIT_AMOUNT: i64 = 1000;
pub const SIM_PRICE_CURRENCY: &str = "usd";

/// One line of the purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    /// `product_data.name`, or the Price id for `price=` items.
    pub name: String,
    pub unit_amount: i64,
    pub quantity: i64,
}

/// What `POST /v1/checkout/sessions` asked for, validated.
#[derive(Clone, Debug, Default)]
pub struct NewSession {
    pub currency: String,
    pub items: Vec<LineItem>,
    /// The sum of `unit_amount * quantity`.
    pub amount_total: i64,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub customer_email: Option<String>,
    pub metadata: Map<String, Value>,
    /// `payment_intent_data.metadata`.
    pub payment_intent_metadata: Map<String, Value>,
    pub expires_at: Option<i64>,
}

/// An open, unpaid `checkout.session` for `new`.
pub fn session(new: &NewSession, id: &str, url: &str, created: i64) -> Value {
    let mut object = json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": new.amount_total,
        "amount_total": new.amount_total,
        "cancel_url": new.cancel_url,
        "client_reference_id": new.client_reference_id,
        "created": created,
        "currency": new.currency,
        "customer_details": null,
        "customer_email": new.customer_email,
        "expires_at": new.expires_at.unwrap_or(created + SESSION_LIFETIME_SECS),
        "livemode": false,
        "metadata": new.metadata,
        "mode": "payment",
        "payment_intent": null,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": new.success_url,
        "url": url,
    });
    if let (Value::Object(object), Value::Object(settings)) = (&mut object, session_settings()) {
        object.extend(settings);
    }
    object
}

/// Session fields a hosted one-off card payment leaves null.
const SESSION_NULLS: &[&str] = &[
    "after_expiration",
    "allow_promotion_codes",
    "allowed_payment_method_types",
    "billing_address_collection",
    "branding_settings",
    "client_secret",
    "collected_information",
    "consent",
    "consent_collection",
    "currency_conversion",
    "customer",
    "customer_account",
    "excluded_payment_method_types",
    "integration_identifier",
    "invoice",
    "locale",
    "managed_payments",
    "name_collection",
    "optional_items",
    "origin_context",
    "payment_link",
    "payment_method_configuration_details",
    "permissions",
    "presentment_details",
    "recovered_from",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "setup_intent",
    "shipping_address_collection",
    "shipping_cost",
    "submit_type",
    "subscription",
    "wallet_options",
];

/// The fields of a Session that are the same for every hosted one-off card payment.
fn session_settings() -> Value {
    let mut settings = json!({
        "adaptive_pricing": { "enabled": false },
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "custom_fields": [],
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null,
        },
        "customer_creation": "if_required",
        "discounts": [],
        "invoice_creation": {
            "enabled": false,
            "invoice_data": {
                "account_tax_ids": null,
                "custom_fields": null,
                "description": null,
                "footer": null,
                "issuer": null,
                "metadata": {},
                "rendering_options": null,
            },
        },
        "payment_method_collection": "if_required",
        "payment_method_options": { "card": { "request_three_d_secure": "automatic" } },
        "payment_method_types": ["card"],
        "phone_number_collection": { "enabled": false },
        "shipping_options": [],
        "tax_id_collection": { "enabled": false, "required": "never" },
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
    });
    if let Value::Object(map) = &mut settings {
        map.extend(SESSION_NULLS.iter().map(|k| ((*k).to_owned(), Value::Null)));
    }
    settings
}

/// The simulated customer's name and billing address.
const CUSTOMER_NAME: &str = "Sim Customer";
/// Used when the session was created without `customer_email`.
pub const DEFAULT_CUSTOMER_EMAIL: &str = "customer@example.com";

fn address() -> Value {
    json!({
        "city": null, "country": "US", "line1": null, "line2": null,
        "postal_code": "94103", "state": null,
    })
}

/// `customer_details` of a session the customer has completed.
pub fn customer_details(email: &str) -> Value {
    json!({
        "address": address(),
        "business_name": null,
        "email": email,
        "individual_name": null,
        "name": CUSTOMER_NAME,
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": [],
    })
}

/// The card payment behind a paid session.
#[derive(Clone, Debug)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    /// Cumulative.
    pub amount_refunded: i64,
    pub currency: String,
    pub payment_intent: String,
    pub payment_method: String,
    pub balance_transaction: String,
    /// The PaymentIntent's metadata (`payment_intent_data.metadata`).
    pub metadata: Map<String, Value>,
    pub email: String,
    pub created: i64,
}

impl Charge {
    pub fn new(
        amount: i64,
        currency: &str,
        payment_intent: &str,
        metadata: Map<String, Value>,
        email: &str,
        created: i64,
    ) -> Self {
        Self {
            id: random_id("ch_3", 23),
            amount,
            amount_refunded: 0,
            currency: currency.to_owned(),
            payment_intent: payment_intent.to_owned(),
            payment_method: random_id("pm_1", 23),
            balance_transaction: random_id("txn_3", 23),
            metadata,
            email: email.to_owned(),
            created,
        }
    }

    pub fn refunded(&self) -> bool {
        self.amount_refunded >= self.amount
    }
}

/// Charge fields a card payment without Connect, disputes or shipping leaves null.
const CHARGE_NULLS: &[&str] = &[
    "application",
    "application_fee",
    "application_fee_amount",
    "authorization_code",
    "customer",
    "description",
    "failure_balance_transaction",
    "failure_code",
    "failure_message",
    "on_behalf_of",
    "presentment_details",
    "radar_options",
    "receipt_number",
    "receipt_url",
    "review",
    "shipping",
    "source",
    "source_transfer",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_data",
    "transfer_group",
];

/// A succeeded `charge` object.
pub fn charge(charge: &Charge) -> Value {
    let mut object = json!({
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount,
        "amount_refunded": charge.amount_refunded,
        "balance_transaction": charge.balance_transaction,
        "billing_details": {
            "address": address(),
            "email": charge.email,
            "name": CUSTOMER_NAME,
            "phone": null,
            "tax_id": null,
        },
        "calculated_statement_descriptor": "SIMULATOR",
        "captured": true,
        "created": charge.created,
        "currency": charge.currency,
        "disputed": false,
        "fraud_details": {},
        "livemode": false,
        "metadata": charge.metadata,
        "outcome": {
            "advice_code": null,
            "network_advice_code": null,
            "network_decline_code": null,
            "network_status": "approved_by_network",
            "reason": null,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": true,
        "payment_intent": charge.payment_intent,
        "payment_method": charge.payment_method,
        "payment_method_details": { "card": card_details(charge.amount), "type": "card" },
        "receipt_email": charge.email,
        "refunded": charge.refunded(),
        "status": "succeeded",
    });
    if let Value::Object(map) = &mut object {
        map.extend(CHARGE_NULLS.iter().map(|k| ((*k).to_owned(), Value::Null)));
    }
    object
}

/// Stripe's test Visa card.
fn card_details(amount: i64) -> Value {
    json!({
        "amount_authorized": amount,
        "authorization_code": null,
        "brand": "visa",
        "checks": {
            "address_line1_check": null,
            "address_postal_code_check": "pass",
            "cvc_check": "pass",
        },
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "extended_authorization": { "status": "disabled" },
        "fingerprint": "SimCardFingerpr",
        "funding": "credit",
        "incremental_authorization": { "status": "unavailable" },
        "installments": null,
        "last4": "4242",
        "mandate": null,
        "multicapture": { "status": "unavailable" },
        "network": "visa",
        "network_token": { "used": false },
        "network_transaction_id": null,
        "overcapture": { "maximum_amount_capturable": amount, "status": "unavailable" },
        "regulated_status": "unregulated",
        "three_d_secure": null,
        "wallet": null,
    })
}

/// An event envelope around `object` (compact when serialized).
pub fn event(event_type: &str, object: Value, created: i64) -> Value {
    json!({
        "id": random_id("evt_1", 23),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
    })
}
