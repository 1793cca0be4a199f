//! Validation of `POST /v1/checkout/sessions` parameters (the decoded form) into a
//! [`NewSession`], with Stripe's 400s: `parameter_missing`, `parameter_invalid_integer`, ...

use serde_json::{Map, Value};

use super::{
    invalid_request,
    objects::{LineItem, NewSession, SIM_PRICE_CURRENCY, SIM_PRICE_UNIT_AMOUNT},
    ApiError, ApiResult,
};

type Params = Map<String, Value>;

/// Stripe's largest charge in the usual two-decimal currencies (999,999.99).
const MAX_AMOUNT: i64 = 99_999_999;
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;
const MAX_CLIENT_REFERENCE_ID_CHARS: usize = 200;
/// `expires_at` must fall between 30 minutes and 24 hours after creation.
const MIN_LIFETIME_SECS: i64 = 30 * 60;
const MAX_LIFETIME_SECS: i64 = 24 * 3600;

fn missing(param: &str) -> ApiError {
    invalid_request(
        Some("parameter_missing"),
        Some(param),
        format!("Missing required param: {param}."),
    )
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    invalid_request(None, Some(param), message)
}

fn invalid_integer(param: &str, raw: &str) -> ApiError {
    invalid_request(
        Some("parameter_invalid_integer"),
        Some(param),
        format!("Invalid integer: {raw}"),
    )
}

fn too_small(param: &str) -> ApiError {
    invalid_request(
        Some("parameter_invalid_integer"),
        Some(param),
        "This value must be greater than or equal to 1.",
    )
}

/// A string parameter; empty counts as absent (that is how forms unset values).
fn text<'a>(params: &'a Params, key: &str, param: &str) -> ApiResult<Option<&'a str>> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(param, format!("Invalid string for {param}"))),
    }
}

fn required_text<'a>(params: &'a Params, key: &str, param: &str) -> ApiResult<&'a str> {
    text(params, key, param)?.ok_or_else(|| missing(param))
}

fn integer(params: &Params, key: &str, param: &str) -> ApiResult<Option<i64>> {
    text(params, key, param)?
        .map(|raw| raw.parse().map_err(|_| invalid_integer(param, raw)))
        .transpose()
}

/// A positive integer parameter.
fn count(params: &Params, key: &str, param: &str) -> ApiResult<i64> {
    let value = integer(params, key, param)?.ok_or_else(|| missing(param))?;
    if value < 1 {
        return Err(too_small(param));
    }
    Ok(value)
}

fn object<'a>(params: &'a Params, key: &str, param: &str) -> ApiResult<Option<&'a Params>> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid(param, format!("Invalid object for {param}"))),
    }
}

/// `metadata[k]=v` pairs; empty values are dropped, as Stripe treats them as unset.
fn metadata(params: &Params, key: &str, param: &str) -> ApiResult<Map<String, Value>> {
    let Some(map) = object(params, key, param)? else {
        return Ok(Map::new());
    };
    let mut out = Map::new();
    for (k, v) in map {
        let entry = format!("{param}[{k}]");
        let Value::String(value) = v else {
            return Err(invalid(&entry, format!("Invalid string for {entry}")));
        };
        if k.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(invalid(
                &entry,
                "Metadata keys can be at most 40 characters long.",
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(invalid(
                &entry,
                "Metadata values can be at most 500 characters long.",
            ));
        }
        if !value.is_empty() {
            out.insert(k.clone(), Value::String(value.clone()));
        }
    }
    if out.len() > MAX_METADATA_KEYS {
        return Err(invalid(param, "Metadata can have at most 50 keys."));
    }
    Ok(out)
}

/// One `line_items[i]`: its currency (None for `price=` items) and the line.
fn line_item(item: &Params, param: &str) -> ApiResult<(Option<String>, LineItem)> {
    let price = text(item, "price", &format!("{param}[price]"))?;
    let data = object(item, "price_data", &format!("{param}[price_data]"))?;
    let (currency, unit_amount, name) = match (price, data) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                param,
                "You may only specify one of these parameters: price, price_data.",
            ))
        }
        (None, None) => {
            return Err(invalid_request(
                Some("parameter_missing"),
                Some(param),
                format!("Each line item needs either {param}[price] or {param}[price_data]."),
            ))
        }
        (Some(price), None) => (None, SIM_PRICE_UNIT_AMOUNT, price.to_owned()),
        (None, Some(data)) => {
            let (currency, unit_amount, name) = price_data(data, &format!("{param}[price_data]"))?;
            (Some(currency), unit_amount, name)
        }
    };
    let quantity = count(item, "quantity", &format!("{param}[quantity]"))?;
    let line = LineItem {
        name,
        unit_amount,
        quantity,
    };
    Ok((currency, line))
}

/// `price_data`: currency, unit amount (integer minor units) and product name.
fn price_data(data: &Params, param: &str) -> ApiResult<(String, i64, String)> {
    let currency_param = format!("{param}[currency]");
    let currency = required_text(data, "currency", &currency_param)?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid(
            &currency_param,
            format!("Invalid currency: {currency}"),
        ));
    }
    let amount_param = format!("{param}[unit_amount]");
    let unit_amount = match integer(data, "unit_amount", &amount_param)? {
        Some(amount) => amount,
        // `unit_amount_decimal` is accepted when it is a whole number of minor units.
        None => match text(
            data,
            "unit_amount_decimal",
            &format!("{param}[unit_amount_decimal]"),
        )? {
            Some(raw) => raw
                .strip_suffix(".0")
                .unwrap_or(raw)
                .parse()
                .map_err(|_| invalid_integer(&amount_param, raw))?,
            None => return Err(missing(&amount_param)),
        },
    };
    if unit_amount < 1 {
        return Err(too_small(&amount_param));
    }
    let product_param = format!("{param}[product_data]");
    let name = match object(data, "product_data", &product_param)? {
        Some(product) => required_text(product, "name", &format!("{product_param}[name]"))?,
        None => text(data, "product", &format!("{param}[product]"))?
            .ok_or_else(|| missing(&format!("{product_param}[name]")))?,
    };
    Ok((currency, unit_amount, name.to_owned()))
}

/// All line items, their common currency and the total.
fn line_items(params: &Params) -> ApiResult<(String, Vec<LineItem>, i64)> {
    let items = match params.get("line_items") {
        None => return Err(missing("line_items")),
        Some(Value::String(s)) if s.is_empty() => return Err(missing("line_items")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("line_items", "Invalid array for line_items")),
    };
    let mut currency: Option<String> = None;
    let mut lines = Vec::with_capacity(items.len());
    let mut total: i64 = 0;
    for (i, item) in items.iter().enumerate() {
        let param = format!("line_items[{i}]");
        let Value::Object(item) = item else {
            return Err(invalid(&param, format!("Invalid object for {param}")));
        };
        let (item_currency, line) = line_item(item, &param)?;
        let item_currency = item_currency.unwrap_or_else(|| SIM_PRICE_CURRENCY.to_owned());
        if currency.get_or_insert_with(|| item_currency.clone()) != &item_currency {
            return Err(invalid(
                "line_items",
                "All line items must use the same currency.",
            ));
        }
        total = line
            .unit_amount
            .checked_mul(line.quantity)
            .and_then(|amount| total.checked_add(amount))
            .filter(|t| *t <= MAX_AMOUNT)
            .ok_or_else(|| {
                invalid_request(
                    Some("amount_too_large"),
                    Some("line_items"),
                    "The total amount must be no more than 999,999.99.",
                )
            })?;
        lines.push(line);
    }
    let currency = currency.ok_or_else(|| missing("line_items"))?;
    Ok((currency, lines, total))
}

/// Validates the parameters of a new Checkout Session created at `created`.
pub(super) fn new_session(params: &Params, created: i64) -> ApiResult<NewSession> {
    match required_text(params, "mode", "mode")? {
        "payment" => {}
        other => {
            return Err(invalid(
                "mode",
                format!("The simulator supports only mode=payment, not mode={other}."),
            ))
        }
    }
    let (currency, items, amount_total) = line_items(params)?;
    let success_url = required_text(params, "success_url", "success_url")?.to_owned();
    let cancel_url = text(params, "cancel_url", "cancel_url")?.map(str::to_owned);
    let client_reference_id =
        text(params, "client_reference_id", "client_reference_id")?.map(str::to_owned);
    if client_reference_id
        .as_deref()
        .is_some_and(|id| id.chars().count() > MAX_CLIENT_REFERENCE_ID_CHARS)
    {
        return Err(invalid(
            "client_reference_id",
            "client_reference_id can be at most 200 characters long.",
        ));
    }
    let customer_email = text(params, "customer_email", "customer_email")?.map(str::to_owned);
    if let Some(email) = customer_email.as_deref().filter(|e| !e.contains('@')) {
        return Err(invalid_request(
            Some("email_invalid"),
            Some("customer_email"),
            format!("Invalid email address: {email}"),
        ));
    }
    let payment_intent_metadata =
        match object(params, "payment_intent_data", "payment_intent_data")? {
            Some(data) => metadata(data, "metadata", "payment_intent_data[metadata]")?,
            None => Map::new(),
        };
    let expires_at = integer(params, "expires_at", "expires_at")?;
    if expires_at.is_some_and(|at| {
        !(created + MIN_LIFETIME_SECS..=created + MAX_LIFETIME_SECS).contains(&at)
    }) {
        return Err(invalid(
            "expires_at",
            "expires_at must be between 30 minutes and 24 hours after the session is created.",
        ));
    }
    Ok(NewSession {
        currency,
        items,
        amount_total,
        success_url,
        cancel_url,
        client_reference_id,
        customer_email,
        metadata: metadata(params, "metadata", "metadata")?,
        payment_intent_metadata,
        expires_at,
    })
}
