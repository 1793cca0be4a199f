//! `/v1/convai/agents...` and `/v1/convai/phone-numbers`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::{
    not_found, now, optional_array, optional_object, optional_str, paginate, parse_object,
    random_id, validation_error, Agent, ApiError, ApiResult, Body, ElevenLabsSim, SIM_PHONE_NUMBER,
    SIM_PHONE_NUMBER_ID,
};

impl Agent {
    /// `GetAgentResponseModel`.
    fn full(&self) -> Value {
        json!({
            "agent_id": self.agent_id,
            "name": self.name,
            "conversation_config": self.conversation_config,
            "platform_settings": self.platform_settings,
            "metadata": { "created_at_unix_secs": self.created_at_unix_secs },
            "tags": self.tags,
            "phone_numbers": [],
        })
    }

    /// `AgentSummaryResponseModel`.
    fn summary(&self) -> Value {
        json!({
            "agent_id": self.agent_id,
            "name": self.name,
            "tags": self.tags,
            "created_at_unix_secs": self.created_at_unix_secs,
            "access_info": {
                "is_creator": true,
                "creator_name": "sim",
                "creator_email": "sim@example.test",
                "role": "admin",
            },
            "last_call_time_unix_secs": null,
            "archived": false,
        })
    }
}

/// ElevenLabs refuses an agent in another language than English unless its speech model is a
/// multilingual v2.5 one (or v3), and an English agent with a v2.5 model; without `model_id`
/// its default model is English only.
fn check_language_model(config: &Value) -> ApiResult<()> {
    let language = config["agent"]["language"].as_str().unwrap_or("en");
    let model = config["tts"]["model_id"]
        .as_str()
        .unwrap_or("eleven_flash_v2");
    let english = language == "en" || language.starts_with("en-");
    let v2_5 = model.ends_with("_v2_5");
    let refusal = match (english, v2_5 || model.starts_with("eleven_v3")) {
        (true, _) if v2_5 => "English Agents must use turbo or flash v2.",
        (false, false) => "Non-english Agents must use turbo or flash v2_5.",
        _ => return Ok(()),
    };
    Err(super::detail_error(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_model",
        refusal,
    ))
}

fn agent_not_found(agent_id: &str) -> ApiError {
    not_found(format!("Agent with id {agent_id} was not found."))
}

/// `tags` must be a list of strings.
fn tags(body: &Body) -> ApiResult<Option<Value>> {
    let Some(items) = optional_array(body, "tags")? else {
        return Ok(None);
    };
    if items.iter().any(|t| !t.is_string()) {
        return Err(validation_error(
            &["body", "tags"],
            "str type expected",
            "type_error.str",
        ));
    }
    Ok(Some(Value::Array(items)))
}

pub(super) async fn create(State(sim): State<Arc<ElevenLabsSim>>, body: Bytes) -> ApiResult {
    let body = parse_object(&body)?;
    let conversation_config = optional_object(&body, "conversation_config")?.ok_or_else(|| {
        validation_error(
            &["body", "conversation_config"],
            "field required",
            "value_error.missing",
        )
    })?;
    check_language_model(&conversation_config)?;
    let agent = Agent {
        agent_id: random_id("agent_", 26),
        name: optional_str(&body, "name")?.unwrap_or_default(),
        conversation_config,
        platform_settings: optional_object(&body, "platform_settings")?
            .unwrap_or_else(|| json!({})),
        tags: tags(&body)?.unwrap_or_else(|| json!([])),
        created_at_unix_secs: now(),
    };
    let agent_id = agent.agent_id.clone();
    sim.state().agents.push(agent);
    Ok(Json(json!({ "agent_id": agent_id })).into_response())
}

pub(super) async fn get(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(agent_id): Path<String>,
) -> ApiResult {
    match sim.state().agent(&agent_id) {
        Some(agent) => Ok(Json(agent.full()).into_response()),
        None => Err(agent_not_found(&agent_id)),
    }
}

/// Newest first; `search` matches names case-insensitively.
pub(super) async fn list(
    State(sim): State<Arc<ElevenLabsSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let search = query
        .get("search")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let agents: Vec<Value> = sim
        .state()
        .agents
        .iter()
        .rev()
        .filter(|a| {
            search
                .as_ref()
                .is_none_or(|s| a.name.to_lowercase().contains(s))
        })
        .map(Agent::summary)
        .collect();
    let (agents, next_cursor, has_more) = paginate(agents, &query)?;
    Ok(Json(json!({
        "agents": agents,
        "next_cursor": next_cursor,
        "has_more": has_more,
    }))
    .into_response())
}

/// Replaces each top-level key present (`name`, `conversation_config`, `platform_settings`,
/// `tags`) and answers the full agent. Nested objects are not merged.
pub(super) async fn update(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = parse_object(&body)?;
    let name = optional_str(&body, "name")?;
    let conversation_config = optional_object(&body, "conversation_config")?;
    if let Some(config) = &conversation_config {
        check_language_model(config)?;
    }
    let platform_settings = optional_object(&body, "platform_settings")?;
    let tags = tags(&body)?;
    let mut state = sim.state();
    let agent = state
        .agents
        .iter_mut()
        .find(|a| a.agent_id == agent_id)
        .ok_or_else(|| agent_not_found(&agent_id))?;
    if let Some(name) = name {
        agent.name = name;
    }
    if let Some(config) = conversation_config {
        agent.conversation_config = config;
    }
    if let Some(settings) = platform_settings {
        agent.platform_settings = settings;
    }
    if let Some(tags) = tags {
        agent.tags = tags;
    }
    Ok(Json(agent.full()).into_response())
}

pub(super) async fn delete(
    State(sim): State<Arc<ElevenLabsSim>>,
    Path(agent_id): Path<String>,
) -> ApiResult {
    let mut state = sim.state();
    let before = state.agents.len();
    state.agents.retain(|a| a.agent_id != agent_id);
    if state.agents.len() == before {
        return Err(agent_not_found(&agent_id));
    }
    Ok(Json(json!({})).into_response())
}

pub(super) async fn phone_numbers() -> Response {
    Json(json!([{
        "phone_number": "+15550100099",
        "label": "Simulator SIP trunk",
        "phone_number_id": super::SIM_SIP_NUMBER_ID,
        "provider": "sip_trunk",
        "supports_inbound": true,
        "supports_outbound": true,
        "assigned_agent": null,
    }, {
        "phone_number": SIM_PHONE_NUMBER,
        "label": "Simulator line",
        "phone_number_id": SIM_PHONE_NUMBER_ID,
        "provider": "twilio",
        "supports_inbound": true,
        "supports_outbound": true,
        "assigned_agent": null,
    }]))
    .into_response()
}
