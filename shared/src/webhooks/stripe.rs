//! Stripe events (already verified at ingest): read leniently, applied to the purchase by
//! [`billing::payments`] in one transaction with the event's dedup row, keyed by the event id.
//! Types we do not act on are acknowledged and recorded as ignored; events that name no
//! purchase of ours are kept in unmatched_events for an admin.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{mark_processed, record_unmatched, set_outcome, Outcome, Unmatched};
use crate::{
    aws::queue::QueuedEvent,
    billing::{
        disputes::{self, DisputeFacts},
        payments::{self, Effect, RefundFacts, SessionFacts},
    },
    error::AppResult,
    AppState,
};

const SOURCE: &str = "stripe";

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Paid,
    Processing,
    Failed,
    Expired,
    Refunded,
    DisputeOpened,
    DisputeClosed,
}

fn action(kind: &str, object: &Value) -> Option<Action> {
    let payment_status = object.get("payment_status").and_then(Value::as_str);
    match kind {
        "checkout.session.completed" => match payment_status {
            Some("paid" | "no_payment_required") => Some(Action::Paid),
            _ => Some(Action::Processing),
        },
        "checkout.session.async_payment_succeeded" => Some(Action::Paid),
        "checkout.session.async_payment_failed" => Some(Action::Failed),
        "checkout.session.expired" => Some(Action::Expired),
        "charge.refunded" => Some(Action::Refunded),
        "charge.dispute.created" | "charge.dispute.funds_withdrawn" => Some(Action::DisputeOpened),
        "charge.dispute.closed" => Some(Action::DisputeClosed),
        _ => None,
    }
}

pub async fn apply(state: &AppState, event: &QueuedEvent, raw: &str) -> AppResult<Outcome> {
    let parsed: Event = match serde_json::from_str(raw) {
        Ok(parsed) => parsed,
        Err(err) => return Ok(Outcome::Rejected(format!("not a Stripe event: {err}"))),
    };
    if !parsed.id.starts_with("evt_") {
        return Ok(Outcome::Rejected(format!(
            "{:?} is not an event id",
            parsed.id
        )));
    }
    let key = format!("stripe:{}", parsed.id);
    let object = &parsed.data.object;
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let Some(action) = action(&parsed.kind, object) else {
        if !mark_processed(&tx, &key, SOURCE, &parsed.kind, None, "ignored").await? {
            return Ok(Outcome::Duplicate);
        }
        tx.commit().await?;
        return Ok(Outcome::Ignored);
    };
    if !mark_processed(&tx, &key, SOURCE, &parsed.kind, None, "applied").await? {
        return Ok(Outcome::Duplicate);
    }
    let effect = match action {
        Action::Refunded => match refund_facts(object) {
            Some(facts) => payments::charge_refunded(&tx, &facts).await?,
            None => return Ok(Outcome::Rejected("charge.refunded without a charge".into())),
        },
        Action::DisputeOpened | Action::DisputeClosed => {
            let Some(facts) = dispute_facts(object) else {
                return Ok(Outcome::Rejected(format!(
                    "{} without a dispute",
                    parsed.kind
                )));
            };
            if action == Action::DisputeOpened {
                disputes::opened(&tx, &facts).await?
            } else {
                disputes::closed(&tx, &facts).await?
            }
        }
        session_action => {
            let Some(facts) = session_facts(object) else {
                return Ok(Outcome::Rejected(format!(
                    "{} without a checkout session",
                    parsed.kind
                )));
            };
            match session_action {
                Action::Paid => payments::session_paid(&tx, &facts).await?,
                Action::Processing => payments::session_processing(&tx, &facts).await?,
                Action::Failed => payments::session_failed(&tx, &facts).await?,
                _ => payments::session_expired(&tx, &facts).await?,
            }
        }
    };
    let outcome = match &effect {
        Effect::Applied => Outcome::Applied,
        Effect::Unchanged(_) => Outcome::Ignored,
        Effect::Review(reason) => {
            // Listed with the unmatched events, so an admin sees what needs a decision.
            keep_unmatched(
                &tx,
                &key,
                &parsed.kind,
                raw,
                &format!("held for review: {reason}"),
            )
            .await?;
            Outcome::Review(reason.clone())
        }
        Effect::UnknownPurchase(reason) => {
            keep_unmatched(&tx, &key, &parsed.kind, raw, reason).await?;
            Outcome::Unmatched
        }
    };
    if outcome != Outcome::Applied {
        set_outcome(&tx, &key, &outcome).await?;
    }
    tx.commit().await?;
    tracing::info!(event_id = %parsed.id, event_key = %event.event_key, kind = %parsed.kind, ?effect, "stripe event");
    Ok(outcome)
}

async fn keep_unmatched(
    tx: &impl deadpool_postgres::GenericClient,
    key: &str,
    kind: &str,
    raw: &str,
    reason: &str,
) -> AppResult<()> {
    let payload: Option<Value> = serde_json::from_str(raw).ok();
    let unmatched = Unmatched {
        key,
        source: SOURCE,
        event_type: kind,
        elevenlabs_agent_id: None,
        conversation_id: None,
        payload: payload.as_ref(),
        raw_payload: None,
        reason,
    };
    record_unmatched(tx, &unmatched).await?;
    tracing::warn!(event_key = key, reason, "kept an unmatched Stripe event");
    Ok(())
}

fn text(object: &Value, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A field that is an id, or the expanded object holding it.
fn id_of(object: &Value, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Object(expanded) => expanded
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn metadata_uuid(object: &Value, key: &str) -> Option<Uuid> {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn session_facts(object: &Value) -> Option<SessionFacts> {
    let session_id = text(object, "id").filter(|id| id.starts_with("cs_"))?;
    Some(SessionFacts {
        purchase_id: text(object, "client_reference_id")
            .and_then(|s| s.parse().ok())
            .or_else(|| metadata_uuid(object, "purchase_id")),
        tenant_id: metadata_uuid(object, "tenant_id"),
        amount_total: object.get("amount_total").and_then(Value::as_i64),
        currency: text(object, "currency"),
        payment_intent: id_of(object, "payment_intent"),
        session_id,
    })
}

fn refund_facts(object: &Value) -> Option<RefundFacts> {
    let charge_id = text(object, "id")?;
    Some(RefundFacts {
        purchase_id: metadata_uuid(object, "purchase_id"),
        payment_intent: id_of(object, "payment_intent"),
        amount_refunded: object.get("amount_refunded").and_then(Value::as_i64)?,
        currency: text(object, "currency"),
        charge_id,
    })
}

fn dispute_facts(object: &Value) -> Option<DisputeFacts> {
    let dispute_id =
        text(object, "id").filter(|id| id.starts_with("du_") || id.starts_with("dp_"))?;
    Some(DisputeFacts {
        dispute_id,
        payment_intent: id_of(object, "payment_intent"),
        amount: object.get("amount").and_then(Value::as_i64)?,
        currency: text(object, "currency"),
        status: text(object, "status").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn completed_sessions_are_paid_only_when_the_money_is_there() {
        let paid = json!({"payment_status": "paid"});
        let unpaid = json!({"payment_status": "unpaid"});
        assert_eq!(
            action("checkout.session.completed", &paid),
            Some(Action::Paid)
        );
        assert_eq!(
            action("checkout.session.completed", &unpaid),
            Some(Action::Processing)
        );
        assert_eq!(
            action("checkout.session.async_payment_succeeded", &unpaid),
            Some(Action::Paid)
        );
        assert_eq!(action("payment_intent.payment_failed", &paid), None);
        assert_eq!(action("customer.created", &paid), None);
    }

    #[test]
    fn facts_are_read_from_ids_or_expanded_objects() {
        let purchase = Uuid::new_v4();
        let session = json!({
            "id": "cs_test_1", "client_reference_id": purchase.to_string(),
            "amount_total": 1000, "currency": "usd",
            "payment_intent": {"id": "pi_1", "object": "payment_intent"},
            "metadata": {"tenant_id": "not-a-uuid"}
        });
        let facts = session_facts(&session).expect("facts");
        assert_eq!(facts.purchase_id, Some(purchase));
        assert_eq!(facts.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(facts.tenant_id, None);
        assert!(session_facts(&json!({"id": "pi_1"})).is_none());
        let charge = json!({"id": "ch_1", "amount_refunded": 500, "payment_intent": "pi_1",
                            "metadata": {"purchase_id": purchase.to_string()}});
        let refund = refund_facts(&charge).expect("refund");
        assert_eq!(refund.purchase_id, Some(purchase));
        assert_eq!(refund.amount_refunded, 500);
        assert!(refund_facts(&json!({"id": "ch_1"})).is_none());
        let dispute = json!({"id": "du_1", "object": "dispute", "amount": 1000, "currency": "usd",
                             "charge": "ch_1", "payment_intent": "pi_1", "status": "needs_response"});
        let facts = dispute_facts(&dispute).expect("dispute");
        assert_eq!(facts.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(facts.amount, 1000);
        assert!(dispute_facts(&json!({"id": "ch_1", "amount": 5})).is_none());
        assert_eq!(
            action("charge.dispute.funds_withdrawn", &dispute),
            Some(Action::DisputeOpened)
        );
        assert_eq!(
            action("charge.dispute.closed", &dispute),
            Some(Action::DisputeClosed)
        );
    }
}
