//! What a customer does with a Checkout Session: the hosted page and its pay buttons, the JSON
//! twins under `/dev/checkout/{id}/...` (pay, refund, expire), and the state changes behind them.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    now,
    objects::{self, Charge, DEFAULT_CUSTOMER_EMAIL},
    random_id, ApiError, Outcome, StoredSession, StripeSim,
};
use crate::{faults::dev_error, form};

/// Why a session cannot be paid (or expired).
#[derive(Debug)]
pub(super) enum NotPayable {
    Unknown,
    /// Its status is no longer `open` (`complete` or `expired`).
    Status(String),
}

/// Why a refund was refused.
#[derive(Debug)]
pub(super) enum RefundError {
    Unknown,
    NotPaid,
    /// The amount is not refundable (400).
    Invalid(String),
}

fn open_session<'a>(
    sessions: &'a mut std::collections::HashMap<String, StoredSession>,
    id: &str,
) -> Result<&'a mut StoredSession, NotPayable> {
    let session = sessions.get_mut(id).ok_or(NotPayable::Unknown)?;
    match session.object["status"].as_str() {
        Some("open") => Ok(session),
        other => Err(NotPayable::Status(other.unwrap_or_default().to_owned())),
    }
}

/// The session's amount is captured: `payment_status` `paid` and a succeeded Charge.
fn capture(session: &mut StoredSession, payment_intent: &str, email: &str, at: i64) {
    session.object["payment_status"] = json!("paid");
    let object = &session.object;
    session.charge = Some(Charge::new(
        object["amount_total"].as_i64().unwrap_or_default(),
        object["currency"].as_str().unwrap_or("usd"),
        payment_intent,
        session.payment_intent_metadata.clone(),
        email,
        at,
    ));
}

impl StripeSim {
    /// Completes an open session with `outcome`. Returns the final Session and the events to
    /// send, in order, each carrying the Session as it was at that step.
    pub(super) fn complete(
        &self,
        id: &str,
        outcome: Outcome,
    ) -> Result<(Value, Vec<Value>), NotPayable> {
        let mut state = self.state();
        let session = open_session(&mut state.sessions, id)?;
        let at = now();
        let payment_intent = random_id("pi_3", 23);
        let email = session.object["customer_email"]
            .as_str()
            .unwrap_or(DEFAULT_CUSTOMER_EMAIL)
            .to_owned();
        let object = &mut session.object;
        object["status"] = json!("complete");
        object["url"] = Value::Null;
        object["payment_intent"] = json!(payment_intent);
        object["customer_details"] = objects::customer_details(&email);
        let completed = "checkout.session.completed";
        let events = match outcome {
            Outcome::Paid => {
                capture(session, &payment_intent, &email, at);
                vec![objects::event(completed, session.object.clone(), at)]
            }
            Outcome::DelayedSuccess => {
                let first = objects::event(completed, session.object.clone(), at);
                capture(session, &payment_intent, &email, at);
                let second = objects::event(
                    "checkout.session.async_payment_succeeded",
                    session.object.clone(),
                    at,
                );
                vec![first, second]
            }
            Outcome::DelayedFailure => vec![
                objects::event(completed, session.object.clone(), at),
                objects::event(
                    "checkout.session.async_payment_failed",
                    session.object.clone(),
                    at,
                ),
            ],
        };
        Ok((session.object.clone(), events))
    }

    /// Expires an open session. Returns the Session and its `checkout.session.expired` event.
    pub(super) fn expire(&self, id: &str) -> Result<(Value, Vec<Value>), NotPayable> {
        let mut state = self.state();
        let session = open_session(&mut state.sessions, id)?;
        session.object["status"] = json!("expired");
        session.object["url"] = Value::Null;
        let event = objects::event("checkout.session.expired", session.object.clone(), now());
        Ok((session.object.clone(), vec![event]))
    }

    /// Refunds `amount` (default: all that is left) of a paid session's Charge. Returns the
    /// Charge and its `charge.refunded` event.
    pub(super) fn refund(
        &self,
        id: &str,
        amount: Option<i64>,
    ) -> Result<(Value, Vec<Value>), RefundError> {
        let mut state = self.state();
        let session = state.sessions.get_mut(id).ok_or(RefundError::Unknown)?;
        let charge = session.charge.as_mut().ok_or(RefundError::NotPaid)?;
        let left = charge.amount - charge.amount_refunded;
        if left == 0 {
            return Err(RefundError::Invalid(format!(
                "charge {} has already been refunded in full",
                charge.id
            )));
        }
        let amount = amount.unwrap_or(left);
        if amount < 1 || amount > left {
            return Err(RefundError::Invalid(format!(
                "amount {amount} must be between 1 and what is left to refund ({left})"
            )));
        }
        charge.amount_refunded += amount;
        let object = objects::charge(charge);
        let event = objects::event("charge.refunded", object.clone(), now());
        Ok((object, vec![event]))
    }
}

// ---- the hosted page ---------------------------------------------------------------------------

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Currencies whose amounts have no minor unit.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// `1000` + `usd` → `10.00 USD`.
fn money(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{amount} {code}");
    }
    format!("{}.{:02} {code}", amount / 100, (amount % 100).abs())
}

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} · Stripe simulator</title><style>body{{font-family:system-ui,sans-serif;\
         max-width:34rem;margin:3rem auto;padding:0 1rem}}td{{padding:.2rem .8rem .2rem 0}}\
         button{{margin:.4rem .4rem 0 0;padding:.5rem 1rem}}</style></head>\n<body>\n{body}\n\
         </body></html>\n",
        title = escape(title)
    )
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!("<h1>{}</h1>\n<p>{}</p>", escape(title), escape(message));
    (status, Html(page_html(title, &body))).into_response()
}

fn checkout_page(id: &str, session: &StoredSession) -> String {
    let object = &session.object;
    let currency = object["currency"].as_str().unwrap_or("usd");
    let status = object["status"].as_str().unwrap_or_default();
    let total = money(
        object["amount_total"].as_i64().unwrap_or_default(),
        currency,
    );
    let rows: String = session
        .items
        .iter()
        .map(|item| {
            format!(
                "<tr><td>{}</td><td>× {}</td><td>{}</td></tr>\n",
                escape(&item.name),
                item.quantity,
                money(item.unit_amount * item.quantity, currency)
            )
        })
        .collect();
    let id = escape(id);
    let actions = if status == "open" {
        let cancel = object["cancel_url"]
            .as_str()
            .map(|url| format!("<p><a href=\"{}\">Cancel and go back</a></p>", escape(url)))
            .unwrap_or_default();
        format!(
            "<form method=\"post\" action=\"/checkout/{id}/pay\">\n\
             <button name=\"outcome\" value=\"paid\">Pay {total}</button>\n\
             <button name=\"outcome\" value=\"delayed_success\">Pay by a delayed method (clears)</button>\n\
             <button name=\"outcome\" value=\"delayed_failure\">Pay by a delayed method (fails)</button>\n\
             </form>\n{cancel}"
        )
    } else {
        format!(
            "<p>This session is {}; there is nothing to pay.</p>",
            escape(status)
        )
    };
    let body = format!(
        "<h1>Pay {total}</h1>\n<p>Local Stripe Checkout simulator · session <code>{id}</code> · \
         status <b>{status}</b></p>\n<table>\n{rows}</table>\n{actions}",
        status = escape(status)
    );
    page_html(&format!("Pay {total}"), &body)
}

/// `GET /checkout/{id}`.
pub(super) async fn page(State(sim): State<Arc<StripeSim>>, Path(id): Path<String>) -> Response {
    let html = sim
        .state()
        .sessions
        .get(&id)
        .map(|session| checkout_page(&id, session));
    match html {
        Some(html) => Html(html).into_response(),
        None => message_page(
            StatusCode::NOT_FOUND,
            "Unknown session",
            &format!("No Checkout Session {id}."),
        ),
    }
}

/// `success_url` with `{CHECKOUT_SESSION_ID}` filled in.
fn success_url(session: &Value) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    session["success_url"]
        .as_str()
        .unwrap_or_default()
        .replace("{CHECKOUT_SESSION_ID}", id)
}

/// `POST /checkout/{id}/pay` (form `outcome`, default `paid`): pays, delivers the events, then
/// sends the browser to `success_url`.
pub(super) async fn pay_form(
    State(sim): State<Arc<StripeSim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form::pairs(&String::from_utf8_lossy(&body));
    let outcome = fields
        .iter()
        .find(|(k, _)| k == "outcome")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty());
    let outcome = match outcome.map(Outcome::parse) {
        None => Outcome::Paid,
        Some(Some(outcome)) => outcome,
        Some(None) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "Unknown outcome",
                "outcome must be paid, delayed_success or delayed_failure.",
            )
        }
    };
    let session = match sim.complete(&id, outcome) {
        Ok((session, events)) => {
            sim.send(events).await;
            session
        }
        Err(NotPayable::Unknown) => {
            return message_page(
                StatusCode::NOT_FOUND,
                "Unknown session",
                &format!("No Checkout Session {id}."),
            )
        }
        Err(NotPayable::Status(status)) => {
            return message_page(
                StatusCode::CONFLICT,
                "Nothing to pay",
                &format!("This session is {status}; it cannot be paid again."),
            )
        }
    };
    let target = success_url(&session);
    match HeaderValue::try_from(target.as_str()) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => message_page(
            StatusCode::OK,
            "Paid",
            &format!("Paid. Continue at {target}"),
        ),
    }
}

fn not_payable(id: &str, error: NotPayable) -> Response {
    match error {
        NotPayable::Unknown => dev_error(StatusCode::NOT_FOUND, format!("no session {id}")),
        NotPayable::Status(status) => dev_error(
            StatusCode::CONFLICT,
            format!("session {id} is {status}, not open"),
        ),
    }
}

/// A JSON body that may be empty (then every field takes its default), or a 400.
fn optional_json<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::from((
            StatusCode::BAD_REQUEST,
            dev_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
        ))
    })
}

#[derive(Default, Deserialize)]
struct PayRequest {
    #[serde(default)]
    outcome: Outcome,
}

/// `POST /dev/checkout/{id}/pay {"outcome":"paid"}` → `{"session":..,"events":[..]}`.
pub(super) async fn pay_json(
    State(sim): State<Arc<StripeSim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: PayRequest = match optional_json(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    match sim.complete(&id, request.outcome) {
        Ok((session, events)) => {
            let events = sim.send(events).await;
            Json(json!({ "session": session, "events": events })).into_response()
        }
        Err(error) => not_payable(&id, error),
    }
}

#[derive(Default, Deserialize)]
struct RefundRequest {
    #[serde(default)]
    amount: Option<i64>,
}

/// `POST /dev/checkout/{id}/refund {"amount"?:cents}` → `{"charge":..,"events":[..]}`.
pub(super) async fn refund(
    State(sim): State<Arc<StripeSim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: RefundRequest = match optional_json(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    match sim.refund(&id, request.amount) {
        Ok((charge, events)) => {
            let events = sim.send(events).await;
            Json(json!({ "charge": charge, "events": events })).into_response()
        }
        Err(RefundError::Unknown) => dev_error(StatusCode::NOT_FOUND, format!("no session {id}")),
        Err(RefundError::NotPaid) => dev_error(
            StatusCode::CONFLICT,
            format!("session {id} has no successful payment to refund"),
        ),
        Err(RefundError::Invalid(message)) => dev_error(StatusCode::BAD_REQUEST, message),
    }
}

/// `POST /dev/checkout/{id}/expire` → `{"session":..,"events":[..]}`.
pub(super) async fn expire(State(sim): State<Arc<StripeSim>>, Path(id): Path<String>) -> Response {
    match sim.expire(&id) {
        Ok((session, events)) => {
            let events = sim.send(events).await;
            Json(json!({ "session": session, "events": events })).into_response()
        }
        Err(error) => not_payable(&id, error),
    }
}
