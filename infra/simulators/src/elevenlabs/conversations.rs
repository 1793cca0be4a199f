//! `/v1/convai/conversations...`, `/v1/convai/twilio/outbound-call` and
//! `/v1/convai/batch-calling/...`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::header,
    response::IntoResponse,
    Json,
};
use serde_json::{json, Value};

use super::{
    in_progress_conversation, not_found, now, optional_array, optional_object, optional_str,
    paginate, parse_object, random_id, required_str, summary, validation_error, ApiError,
    ApiResult, CallParams, Direction, ElevenLabsSim, Outcome, SIM_PHONE_NUMBER_ID,
};

fn conversation_not_found() -> ApiError {
    not_found("Conversation not found")
}

fn query_i64(query: &HashMap<String, String>, name: &str) -> ApiResult<Option<i64>> {
    match query.get(name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| {
            validation_error(
                &["query", name],
                "value is not a valid integer",
                "type_error.integer",
            )
        }),
    }
}

/// Newest first, filtered by `agent_id`, `call_successful` and the start-time bounds
/// (`call_start_after_unix` is inclusive, `call_start_before_unix` exclusive).
pub(super) async fn list(
    State(sim): State<Arc<ElevenLabsSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let after = query_i64(&query, "call_start_after_unix")?;
    let before = query_i64(&query, "call_start_before_unix")?;
    let agent_id = query.get("agent_id").filter(|s| !s.is_empty());
    let successful = query.get("call_successful").filter(|s| !s.is_empty());
    let mut rows: Vec<(i64, u64, Value)> = sim
        .state()
        .conversations
        .iter()
        .map(|c| {
            let start = c.data["metadata"]["start_time_unix_secs"]
                .as_i64()
                .unwrap_or_default();
            (start, c.seq, summary(&c.data))
        })
        .filter(|(start, _, s)| {
            agent_id.is_none_or(|id| s["agent_id"] == id.as_str())
                && successful.is_none_or(|v| s["call_successful"] == v.as_str())
                && after.is_none_or(|after| *start >= after)
                && before.is_none_or(|before| *start < before)
        })
        .collect();
    rows.sort_by_key(|(start, seq, _)| std::cmp::Reverse((*start, *seq)));
    let rows: Vec<Value> = rows.into_iter().map(|(_, _, s)| s).collect();
    let (conversations, next_cursor, has_more) = paginate(rows, &query)?;
    Ok(Json(json!({
        "conversations": conversations,
        "next_cursor": next_cursor,
        "has_more": has_more,
    }))
    .into_response())
}

pub(super) async fn get(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(conversation_id): Path<String>,
) -> ApiResult {
    let data = sim
        .conversation_data(&conversation_id)
        .ok_or_else(conversation_not_found)?;
    Ok(Json(data).into_response())
}

pub(super) async fn audio(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(conversation_id): Path<String>,
) -> ApiResult {
    let state = sim.state();
    let conversation = state
        .conversation(&conversation_id)
        .ok_or_else(conversation_not_found)?;
    let bytes = conversation
        .audio
        .clone()
        .ok_or_else(|| not_found("Audio not found for this conversation"))?;
    Ok(([(header::CONTENT_TYPE, "audio/mpeg")], bytes).into_response())
}

/// Copies `conversation_initiation_client_data` into `params`; dynamic variables must be scalars.
fn apply_client_data(params: &mut CallParams, client_data: Option<Value>) -> ApiResult<()> {
    const LOC: &str = "conversation_initiation_client_data";
    let Some(Value::Object(mut data)) = client_data else {
        return Ok(());
    };
    match data.remove("dynamic_variables") {
        None | Some(Value::Null) => {}
        Some(Value::Object(variables)) => {
            if let Some(key) = variables
                .iter()
                .find(|(_, v)| v.is_object() || v.is_array())
                .map(|(k, _)| k)
            {
                return Err(validation_error(
                    &["body", LOC, "dynamic_variables", key],
                    "value must be a string, number, boolean or null",
                    "type_error",
                ));
            }
            params.dynamic_variables.extend(variables);
        }
        Some(_) => {
            return Err(validation_error(
                &["body", LOC, "dynamic_variables"],
                "value is not a valid dict",
                "type_error.dict",
            ))
        }
    }
    if let Some(user_id) = data.get("user_id").and_then(Value::as_str) {
        params.user_id = Some(user_id.to_owned());
    }
    params.client_data_extra = data;
    Ok(())
}

fn agent_name(sim: &ElevenLabsSim, agent_id: &str) -> ApiResult<String> {
    sim.agent_name(agent_id)
        .ok_or_else(|| not_found(format!("Agent with id {agent_id} was not found.")))
}

/// A line of the workspace; `twilio` for Twilio's outbound-call endpoint, which refuses others
/// (batch calling takes a SIP trunk's too).
fn check_phone_number_id(phone_number_id: &str, twilio: bool) -> ApiResult<()> {
    if phone_number_id == SIM_PHONE_NUMBER_ID
        || (!twilio && phone_number_id == super::SIM_SIP_NUMBER_ID)
    {
        Ok(())
    } else if phone_number_id == super::SIM_SIP_NUMBER_ID {
        Err(super::detail_error(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_phone_number",
            "This phone number is not a Twilio number.",
        ))
    } else {
        Err(not_found(format!(
            "Phone number {phone_number_id} was not found."
        )))
    }
}

/// Records an `in-progress` conversation; nothing is delivered until `/dev/simulate-call`.
pub(super) async fn outbound_call(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> ApiResult {
    let body = parse_object(&body)?;
    let agent_id = required_str(&body, "agent_id")?;
    let phone_number_id = required_str(&body, "agent_phone_number_id")?;
    let to_number = required_str(&body, "to_number")?;
    let client_data = optional_object(&body, "conversation_initiation_client_data")?;
    let agent_name = agent_name(&sim, &agent_id)?;
    check_phone_number_id(&phone_number_id, true)?;

    let mut params = CallParams::new(agent_id, Outcome::Success, 0);
    params.agent_name = agent_name;
    params.phone_number = to_number;
    params.direction = Direction::Outbound;
    params.start_time_unix_secs = now();
    apply_client_data(&mut params, client_data)?;
    sim.store_conversation(in_progress_conversation(&params), None);
    Ok(Json(json!({
        "success": true,
        "message": "Success",
        "conversation_id": params.conversation_id,
        "callSid": params.call_sid,
    }))
    .into_response())
}

/// A recipient of a batch, as stored (GET batch shows them).
fn recipient(index: usize, value: &Value, created: i64) -> ApiResult<Value> {
    let loc_index = index.to_string();
    let Value::Object(fields) = value else {
        return Err(validation_error(
            &["body", "recipients", &loc_index],
            "value is not a valid dict",
            "type_error.dict",
        ));
    };
    let phone_number = optional_str(fields, "phone_number")
        .ok()
        .flatten()
        .ok_or_else(|| {
            validation_error(
                &["body", "recipients", &loc_index, "phone_number"],
                "field required",
                "value_error.missing",
            )
        })?;
    Ok(json!({
        "id": fields.get("id").filter(|v| !v.is_null()).cloned()
            .unwrap_or_else(|| json!(random_id("rcpt_", 24))),
        "phone_number": phone_number,
        "status": "pending",
        "conversation_id": null,
        "created_at_unix": created,
        "updated_at_unix": created,
        "conversation_initiation_client_data": fields.get("conversation_initiation_client_data"),
    }))
}

pub(super) async fn submit_batch(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> ApiResult {
    let created = now();
    let body = parse_object(&body)?;
    let name = required_str(&body, "call_name")?;
    let agent_id = required_str(&body, "agent_id")?;
    let phone_number_id = optional_str(&body, "agent_phone_number_id")?;
    let scheduled = match body.get("scheduled_time_unix") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            validation_error(
                &["body", "scheduled_time_unix"],
                "value is not a valid integer",
                "type_error.integer",
            )
        })?),
    };
    let recipients = optional_array(&body, "recipients")?
        .ok_or_else(|| {
            validation_error(
                &["body", "recipients"],
                "field required",
                "value_error.missing",
            )
        })?
        .iter()
        .enumerate()
        .map(|(i, r)| recipient(i, r, created))
        .collect::<ApiResult<Vec<_>>>()?;
    let agent_name = agent_name(&sim, &agent_id)?;
    if let Some(id) = &phone_number_id {
        check_phone_number_id(id, false)?;
    }
    let batch = json!({
        "id": random_id("batch_", 24),
        "name": name,
        "agent_id": agent_id,
        "agent_name": agent_name,
        "phone_number_id": phone_number_id,
        "phone_provider": "twilio",
        "status": "pending",
        "created_at_unix": created,
        "scheduled_time_unix": scheduled.unwrap_or(created),
        "last_updated_at_unix": created,
        "total_calls_dispatched": 0,
        "total_calls_scheduled": recipients.len(),
        "total_calls_finished": 0,
        "retry_count": 0,
    });
    let mut stored = batch.clone();
    stored["recipients"] = Value::Array(recipients);
    sim.state().batches.push(stored);
    Ok(Json(batch).into_response())
}

/// `POST /v1/convai/batch-calling/{id}/cancel`: the batch and its pending recipients are
/// cancelled; the batch is answered as it now is.
pub(super) async fn cancel_batch(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(batch_id): Path<String>,
) -> ApiResult {
    let mut state = sim.state();
    let batch = state
        .batches
        .iter_mut()
        .find(|b| b["id"] == batch_id.as_str())
        .ok_or_else(|| not_found(format!("Batch call {batch_id} was not found.")))?;
    batch["status"] = json!("cancelled");
    batch["last_updated_at_unix"] = json!(now());
    if let Some(recipients) = batch["recipients"].as_array_mut() {
        for recipient in recipients.iter_mut().filter(|r| r["status"] == "pending") {
            recipient["status"] = json!("cancelled");
        }
    }
    Ok(Json(batch.clone()).into_response())
}

pub(super) async fn get_batch(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(batch_id): Path<String>,
) -> ApiResult {
    let state = sim.state();
    let batch = state
        .batches
        .iter()
        .find(|b| b["id"] == batch_id.as_str())
        .ok_or_else(|| not_found(format!("Batch call {batch_id} was not found.")))?;
    Ok(Json(batch.clone()).into_response())
}
