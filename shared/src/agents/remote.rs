//! The agent as ElevenLabs stores it: building its `conversation_config`, reading it back, and
//! changing it.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::{
    input::{language, remote_id},
    AgentSpec, AgentType, AgentUpdate, MAX_FIRST_MESSAGE_CHARS, MAX_PROMPT_CHARS,
};
use crate::{
    clients::elevenlabs::{ElevenLabs, ElevenLabsError},
    error::{AppError, AppResult},
    text,
};

/// The lead-scoring items (id, JSON type, what the analysis model is asked to extract) every
/// agent asks ElevenLabs' post-call analysis to fill, sent as
/// `platform_settings.data_collection`; `leads::scoring` reads the results under the same ids.
pub const DATA_COLLECTION: &[(&str, &str, &str)] = &[
    (
        "intent_level",
        "string",
        "Buying intent: high, medium, low or none",
    ),
    (
        "intent_score",
        "integer",
        "Buying intent score from 0 to 20",
    ),
    (
        "intent_reasoning",
        "string",
        "One sentence explaining the intent score",
    ),
    (
        "urgency_level",
        "string",
        "Urgency: immediate, soon, later or none",
    ),
    ("urgency_score", "integer", "Urgency score from 0 to 20"),
    (
        "urgency_reasoning",
        "string",
        "One sentence explaining the urgency score",
    ),
    (
        "budget_constraint",
        "string",
        "Budget: no_constraint, flexible, tight or unknown",
    ),
    ("budget_score", "integer", "Budget fit score from 0 to 20"),
    (
        "budget_reasoning",
        "string",
        "One sentence explaining the budget score",
    ),
    (
        "fit_alignment",
        "string",
        "Fit with the offer: strong, partial, weak or unknown",
    ),
    ("fit_score", "integer", "Fit score from 0 to 20"),
    (
        "fit_reasoning",
        "string",
        "One sentence explaining the fit score",
    ),
    (
        "engagement_health",
        "string",
        "Engagement: high, medium or low",
    ),
    (
        "engagement_score",
        "integer",
        "Engagement score from 0 to 20",
    ),
    (
        "engagement_reasoning",
        "string",
        "One sentence explaining the engagement score",
    ),
    (
        "cta_behavior_reasoning",
        "string",
        "One sentence on how the caller reacted to calls to action",
    ),
    (
        "cta_pricing_clicked",
        "boolean",
        "True if the caller asked for or accepted pricing",
    ),
    (
        "cta_demo_clicked",
        "boolean",
        "True if the caller asked for or accepted a demo",
    ),
    (
        "cta_followup_clicked",
        "boolean",
        "True if the caller agreed to a follow-up",
    ),
    (
        "cta_sample_clicked",
        "boolean",
        "True if the caller asked for a sample",
    ),
    (
        "cta_escalated_to_human",
        "boolean",
        "True if the caller asked for a human",
    ),
];

/// The agent's configuration as the frontend shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct AgentConfig {
    pub system_prompt: Option<String>,
    pub first_message: Option<String>,
    pub voice_id: Option<String>,
    pub language: Option<String>,
    pub llm: Option<String>,
    pub text_only: bool,
}

impl AgentConfig {
    pub fn from_remote(remote: &Value) -> Self {
        let config = &remote["conversation_config"];
        let text = |value: &Value| value.as_str().map(str::to_owned);
        Self {
            system_prompt: text(&config["agent"]["prompt"]["prompt"]),
            first_message: text(&config["agent"]["first_message"]),
            voice_id: text(&config["tts"]["voice_id"]),
            language: text(&config["agent"]["language"]),
            llm: text(&config["agent"]["prompt"]["llm"]),
            text_only: config["conversation"]["text_only"]
                .as_bool()
                .unwrap_or(false),
        }
    }
}

/// The parts of ElevenLabs' agent document a tenant configures, and nothing else: the rest
/// (`platform_settings` webhooks and their headers, workspace ids, secrets' references) is the
/// platform's and may carry values shared across tenants.
const TENANT_FIELDS: &[&[&str]] = &[
    &["agent_id"],
    &["name"],
    &["conversation_config", "agent", "first_message"],
    &["conversation_config", "agent", "language"],
    &["conversation_config", "agent", "prompt", "prompt"],
    &["conversation_config", "agent", "prompt", "llm"],
    &["conversation_config", "tts", "voice_id"],
    &["conversation_config", "conversation", "text_only"],
    &["platform_settings", "data_collection"],
];

/// ElevenLabs' agent document reduced to [`TENANT_FIELDS`], in the same nesting.
pub fn tenant_view(remote: &Value) -> Value {
    let mut view = Value::Object(Map::new());
    for path in TENANT_FIELDS {
        let Some(value) = path.iter().try_fold(remote, |node, key| node.get(key)) else {
            continue;
        };
        let (last, parents) = path.split_last().expect("paths are not empty");
        let mut node = &mut view;
        for key in parents {
            node = node
                .as_object_mut()
                .expect("built from objects")
                .entry(*key)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Some(object) = node.as_object_mut() {
            object.insert((*last).to_owned(), value.clone());
        }
    }
    view
}

/// The speech model for agents in other languages than English: ElevenLabs refuses a
/// non-English agent whose model is not a multilingual one (Flash or Turbo v2.5), and its
/// default model for new agents is English only.
pub const MULTILINGUAL_TTS_MODEL: &str = "eleven_flash_v2_5";

/// The speech model an agent in `language` must switch to from `model` (None: ElevenLabs'
/// default), if ElevenLabs would refuse that pair: a non-English agent needs a multilingual
/// v2.5 (or v3) model, and an English one refuses the v2.5 models ("English Agents must use
/// turbo or flash v2"), so it takes the same model's English v2.
fn model_for(language: &str, model: Option<&str>) -> Option<String> {
    let v2_5 = model.and_then(|m| m.strip_suffix("_v2_5"));
    if language == "en" || language.starts_with("en-") {
        return v2_5.map(|base| format!("{base}_v2"));
    }
    let multilingual = v2_5.is_some() || model.is_some_and(|m| m.starts_with("eleven_v3"));
    (!multilingual).then(|| MULTILINGUAL_TTS_MODEL.to_owned())
}

/// The `conversation_config` of a new agent. Voice and LLM are always explicit: ElevenLabs'
/// defaults for them are not documented.
pub fn conversation_config(spec: &AgentSpec) -> Value {
    let mut tts = json!({"voice_id": spec.voice_id});
    if let Some(model) = model_for(&spec.language, None) {
        tts["model_id"] = json!(model);
    }
    json!({
        "agent": {
            "first_message": spec.first_message.clone().unwrap_or_default(),
            "language": spec.language,
            "prompt": {"prompt": spec.system_prompt, "llm": spec.llm},
        },
        "tts": tts,
        "conversation": {"text_only": spec.kind == AgentType::Chat},
    })
}

/// `existing` platform settings with our lead-scoring data-collection items added, so the
/// post-call analysis fills the LeadAnalytics fields (items of the tenant's own are kept), and
/// with the agent's switch for the workspace's conversation-initiation webhook on: without it
/// ElevenLabs never asks our contact lookup who is calling (the README's Deploy section sets
/// the webhook's URL).
pub fn platform_settings(existing: &Value) -> Value {
    let mut settings = existing.as_object().cloned().unwrap_or_default();
    let mut overrides = section(&settings, "overrides");
    overrides.insert(
        "enable_conversation_initiation_client_data_from_webhook".into(),
        json!(true),
    );
    settings.insert("overrides".into(), Value::Object(overrides));
    let mut items = section(&settings, "data_collection");
    for (id, kind, description) in DATA_COLLECTION {
        items.insert(
            (*id).to_owned(),
            json!({"type": kind, "description": description}),
        );
    }
    settings.insert("data_collection".into(), Value::Object(items));
    Value::Object(settings)
}

/// A copy of the object `name` of `map`: ElevenLabs takes a sub-object whole, so a change to
/// one of its fields is written back with the rest of it. Empty when there is none.
fn section(map: &Map<String, Value>, name: &str) -> Map<String, Value> {
    map.get(name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The validated configuration changes of an update.
#[derive(Debug, Default)]
pub struct Changes {
    system_prompt: Option<String>,
    /// Some("") clears the first message (the caller speaks first).
    first_message: Option<String>,
    voice_id: Option<String>,
    language: Option<String>,
}

impl Changes {
    pub fn validate(update: &AgentUpdate) -> AppResult<Self> {
        let system_prompt = match &update.system_prompt {
            None => None,
            Some(raw) => Some(
                text::optional_block("system_prompt", Some(raw), MAX_PROMPT_CHARS)?
                    .ok_or_else(|| AppError::validation("system_prompt", "must not be empty"))?,
            ),
        };
        let first_message = match &update.first_message {
            None => None,
            Some(raw) => Some(
                text::optional_block("first_message", Some(raw), MAX_FIRST_MESSAGE_CHARS)?
                    .unwrap_or_default(),
            ),
        };
        Ok(Self {
            system_prompt,
            first_message,
            voice_id: remote_id("voice_id", update.voice_id.as_deref())?,
            language: language(update.language.as_deref())?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.system_prompt.is_none()
            && self.first_message.is_none()
            && self.voice_id.is_none()
            && self.language.is_none()
    }

    fn apply_to(&self, config: &mut Map<String, Value>) {
        let mut agent = section(config, "agent");
        let mut prompt = section(&agent, "prompt");
        if let Some(text) = &self.system_prompt {
            prompt.insert("prompt".into(), json!(text));
        }
        agent.insert("prompt".into(), Value::Object(prompt));
        if let Some(text) = &self.first_message {
            agent.insert("first_message".into(), json!(text));
        }
        if let Some(code) = &self.language {
            agent.insert("language".into(), json!(code));
        }
        config.insert("agent".into(), Value::Object(agent));
        let mut tts = section(config, "tts");
        if let Some(voice) = &self.voice_id {
            tts.insert("voice_id".into(), json!(voice));
        }
        if let Some(code) = &self.language {
            if let Some(model) = model_for(code, tts.get("model_id").and_then(Value::as_str)) {
                tts.insert("model_id".into(), json!(model));
            }
        }
        if self.voice_id.is_some() || self.language.is_some() {
            config.insert("tts".into(), Value::Object(tts));
        }
    }
}

/// ElevenLabs' answer to an agent's settings we sent: its refusal of them (400, 422) is the
/// request's (a voice id it does not know, a prompt it will not take), a 400 naming what it
/// said; anything else is its own failure (502).
pub fn settings_refused(err: ElevenLabsError) -> AppError {
    match err {
        ElevenLabsError::Api {
            status, message, ..
        } if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY => {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "the voice platform (ElevenLabs) refused the agent's settings",
            )
            .with_details(json!({
                "service": "elevenlabs",
                "status": status.as_u16(),
                "message": message,
            }))
        }
        other => other.into(),
    }
}

/// Reads the agent, applies the changes to complete sub-objects and writes them back.
pub async fn apply(
    client: &ElevenLabs,
    remote_id: &str,
    name: Option<&str>,
    changes: &Changes,
) -> AppResult<()> {
    let current = match client.get_agent(remote_id).await {
        Ok(current) => current,
        Err(err) if err.is_not_found() => {
            return Err(AppError::conflict(
                "agent_missing_remotely",
                "ElevenLabs no longer has this agent; delete it and create a new one",
            ))
        }
        Err(err) => return Err(err.into()),
    };
    let mut patch = Map::new();
    if let Some(name) = name {
        patch.insert("name".into(), json!(name));
    }
    if !changes.is_empty() {
        let mut config = current["conversation_config"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        changes.apply_to(&mut config);
        patch.insert("conversation_config".into(), Value::Object(config));
        patch.insert(
            "platform_settings".into(),
            platform_settings(&current["platform_settings"]),
        );
    }
    client
        .update_agent(remote_id, &Value::Object(patch))
        .await
        .map_err(settings_refused)?;
    Ok(())
}

/// The phone number id outbound calls use: the one asked for, which must be a workspace number
/// that can call out, or else the workspace's first outbound number (None when it has none).
/// Calls are placed through Twilio's endpoint, which takes Twilio's numbers only (a SIP
/// trunk's or Exotel's have their own): a number of another provider is not one.
pub async fn outbound_line(
    client: &ElevenLabs,
    wanted: Option<String>,
) -> AppResult<Option<String>> {
    let numbers = client.list_phone_numbers().await?;
    let outbound = |n: &&crate::clients::elevenlabs::PhoneNumber| {
        n.supports_outbound != Some(false) && n.provider.as_deref().is_none_or(|p| p == "twilio")
    };
    match wanted {
        Some(id) => numbers
            .iter()
            .filter(outbound)
            .find(|n| n.phone_number_id == id)
            .map(|n| Some(n.phone_number_id.clone()))
            .ok_or_else(|| {
                AppError::validation(
                    "phone_number_id",
                    "is not a Twilio number of this workspace that can call out",
                )
            }),
        None => Ok(numbers
            .iter()
            .find(outbound)
            .map(|n| n.phone_number_id.clone())),
    }
}

/// The instructions of an agent created without any: a polite general assistant that keeps
/// what a lead needs (the analysis' data collection asks for the same).
pub fn default_prompt(name: &str, kind: AgentType) -> String {
    let channel = match kind {
        AgentType::Call => "on the phone",
        AgentType::Chat => "in a chat",
    };
    format!(
        "You are {name}, a friendly and concise assistant talking with a customer {channel}. \
         Find out what they need and help them with it. Ask for their name and email address, \
         and whether they would like a follow-up. Never invent facts you were not given."
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tenant_view_keeps_configured_fields_and_drops_platform_ones() {
        let remote = json!({
            "agent_id": "agent_1",
            "name": "Sales",
            "conversation_config": {
                "agent": {"first_message": "Hi", "language": "en",
                          "prompt": {"prompt": "Be kind", "llm": "gpt-4o-mini", "tools": [{"secret": "x"}]}},
                "tts": {"voice_id": "v1", "model_id": "m"},
                "conversation": {"text_only": false}
            },
            "platform_settings": {
                "data_collection": {"budget": {"type": "string"}},
                "workspace_overrides": {"webhooks": {"url": "https://hooks", "headers": {"x-secret": "s3cr3t"}}}
            },
            "access_info": {"creator_email": "ops@platform"}
        });
        let view = super::tenant_view(&remote);
        assert_eq!(
            view,
            json!({
                "agent_id": "agent_1",
                "name": "Sales",
                "conversation_config": {
                    "agent": {"first_message": "Hi", "language": "en",
                              "prompt": {"prompt": "Be kind", "llm": "gpt-4o-mini"}},
                    "tts": {"voice_id": "v1"},
                    "conversation": {"text_only": false}
                },
                "platform_settings": {"data_collection": {"budget": {"type": "string"}}}
            })
        );
        assert!(!view.to_string().contains("s3cr3t"));
    }

    use super::*;

    fn spec(kind: AgentType) -> AgentSpec {
        AgentSpec {
            name: "Sales".into(),
            kind,
            system_prompt: "Sell.".into(),
            first_message: Some("Hi {{customer_name}}".into()),
            voice_id: "v1".into(),
            language: "en".into(),
            llm: "gemini-2.0-flash".into(),
        }
    }

    #[test]
    fn chat_agents_are_text_only() {
        let config = conversation_config(&spec(AgentType::Chat));
        assert_eq!(config["conversation"]["text_only"], true);
        let config = conversation_config(&spec(AgentType::Call));
        assert_eq!(config["conversation"]["text_only"], false);
        assert_eq!(config["agent"]["prompt"]["llm"], "gemini-2.0-flash");
        assert_eq!(config["tts"]["voice_id"], "v1");
        let read = AgentConfig::from_remote(&json!({"conversation_config": config}));
        assert_eq!(read.system_prompt.as_deref(), Some("Sell."));
        assert_eq!(read.first_message.as_deref(), Some("Hi {{customer_name}}"));
    }

    #[test]
    fn data_collection_covers_every_scoring_field_and_keeps_the_tenants_own() {
        let settings = platform_settings(&json!({
            "data_collection": {"favourite_colour": {"type": "string", "description": "x"}},
            "call_limits": {"daily_limit": 5},
        }));
        let items = settings["data_collection"].as_object().expect("items");
        for (id, kind, _) in DATA_COLLECTION {
            assert_eq!(items[*id]["type"], *kind, "{id}");
        }
        assert!(items.contains_key("favourite_colour"));
        assert_eq!(settings["call_limits"]["daily_limit"], 5);
        assert_eq!(
            settings["overrides"]["enable_conversation_initiation_client_data_from_webhook"],
            true
        );
    }

    #[test]
    fn agents_in_other_languages_speak_with_a_multilingual_model() {
        let english = conversation_config(&spec(AgentType::Call));
        assert!(english["tts"].get("model_id").is_none(), "{english}");
        let french = conversation_config(&AgentSpec {
            language: "fr".into(),
            ..spec(AgentType::Call)
        });
        assert_eq!(french["tts"]["model_id"], MULTILINGUAL_TTS_MODEL);

        let switched = |model: Value, language: &str| {
            let mut config =
                json!({"agent": {"language": "en"}, "tts": {"voice_id": "v1", "model_id": model}})
                    .as_object()
                    .cloned()
                    .expect("object");
            let changes = Changes::validate(&AgentUpdate {
                language: Some(language.into()),
                ..Default::default()
            })
            .expect("valid");
            changes.apply_to(&mut config);
            config["tts"]["model_id"].clone()
        };
        assert_eq!(
            switched(json!("eleven_flash_v2"), "es"),
            MULTILINGUAL_TTS_MODEL
        );
        assert_eq!(switched(Value::Null, "pt-br"), MULTILINGUAL_TTS_MODEL);
        assert_eq!(
            switched(json!("eleven_turbo_v2_5"), "de"),
            "eleven_turbo_v2_5"
        );
        assert_eq!(
            switched(json!("eleven_flash_v2"), "en-gb"),
            "eleven_flash_v2"
        );
        // Back to English: the v2.5 models are refused there, their English v2 is not.
        assert_eq!(
            switched(json!("eleven_flash_v2_5"), "en"),
            "eleven_flash_v2"
        );
        assert_eq!(
            switched(json!("eleven_turbo_v2_5"), "en"),
            "eleven_turbo_v2"
        );
        assert_eq!(
            switched(json!("eleven_v3_conversational"), "en"),
            "eleven_v3_conversational"
        );
    }

    #[test]
    fn changes_keep_what_they_do_not_touch() {
        let mut config = json!({
            "agent": {"first_message": "Hi", "language": "en",
                      "prompt": {"prompt": "old", "llm": "x", "temperature": 0.3}},
            "tts": {"voice_id": "v1", "stability": 0.5},
            "asr": {"quality": "high"},
        })
        .as_object()
        .cloned()
        .expect("object");
        let changes = Changes::validate(&AgentUpdate {
            system_prompt: Some("new".into()),
            voice_id: Some("v2".into()),
            ..Default::default()
        })
        .expect("valid");
        changes.apply_to(&mut config);
        let config = Value::Object(config);
        assert_eq!(config["agent"]["prompt"]["prompt"], "new");
        assert_eq!(config["agent"]["prompt"]["temperature"], 0.3);
        assert_eq!(config["agent"]["first_message"], "Hi");
        assert_eq!(config["tts"]["voice_id"], "v2");
        assert_eq!(config["tts"]["stability"], 0.5);
        assert_eq!(config["asr"]["quality"], "high");
    }
}
