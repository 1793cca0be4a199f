//! What a request asks of an agent, checked at the edge: a new agent's settings with the
//! platform's defaults, and an update's fields.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    default_prompt, AgentType, MAX_FIRST_MESSAGE_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
};
use crate::{
    error::{AppError, AppResult},
    text, AppState,
};

/// `POST /api/agents`. design.md's Agent model has only `name` of these: a form that sends
/// just that gets a call agent with [`default_prompt`] and the platform's voice and language.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAgent {
    /// 1 to 100 characters.
    pub name: String,
    /// `call` (the default) or `chat`.
    #[serde(rename = "type", default)]
    pub kind: AgentType,
    /// The agent's instructions (up to 20,000 characters); when absent, a general assistant's
    /// (see the README). Given but blank is refused.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// What the agent says first (up to 1,000 characters); the caller speaks first when empty.
    #[serde(default)]
    pub first_message: Option<String>,
    /// An ElevenLabs voice id; the platform default when absent.
    #[serde(default)]
    pub voice_id: Option<String>,
    /// ISO 639-1 code such as `en` or `pt-br`; the platform default when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// The ElevenLabs phone number id to call from; the workspace's first outbound line when
    /// absent (call agents only).
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

/// `PUT /api/agents/{id}`: every field optional; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AgentUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub first_message: Option<String>,
    #[serde(default)]
    pub voice_id: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Refused: an agent keeps its type.
    #[serde(default, rename = "type")]
    pub kind: Option<AgentType>,
}

impl AgentUpdate {
    /// The fields this update sets (for the audit log; values may be long or personal).
    pub fn field_names(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("system_prompt", self.system_prompt.is_some()),
            ("first_message", self.first_message.is_some()),
            ("voice_id", self.voice_id.is_some()),
            ("language", self.language.is_some()),
            ("phone_number_id", self.phone_number_id.is_some()),
            ("is_active", self.is_active.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A new agent's settings after validation and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub name: String,
    pub kind: AgentType,
    pub system_prompt: String,
    pub first_message: Option<String>,
    pub voice_id: String,
    pub language: String,
    pub llm: String,
}

impl NewAgent {
    pub fn validate(&self, state: &AppState) -> AppResult<AgentSpec> {
        let defaults = &state.config().agent_defaults;
        let name = text::line("name", &self.name, MAX_NAME_CHARS)?;
        let system_prompt = match &self.system_prompt {
            Some(prompt) => text::optional_block("system_prompt", Some(prompt), MAX_PROMPT_CHARS)?
                .ok_or_else(|| AppError::validation("system_prompt", "must not be empty"))?,
            None => default_prompt(&name, self.kind),
        };
        Ok(AgentSpec {
            name,
            kind: self.kind,
            system_prompt,
            first_message: text::optional_block(
                "first_message",
                self.first_message.as_deref(),
                MAX_FIRST_MESSAGE_CHARS,
            )?,
            voice_id: remote_id("voice_id", self.voice_id.as_deref())?
                .unwrap_or_else(|| defaults.voice_id.clone()),
            language: language(self.language.as_deref())?
                .unwrap_or_else(|| defaults.language.clone()),
            llm: defaults.llm.clone(),
        })
    }
}

/// An id we pass on to ElevenLabs (voice, phone number): a short token of safe characters.
pub(super) fn remote_id(field: &str, raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(id) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let safe = id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !safe {
        return Err(AppError::validation(
            field,
            "must be an ElevenLabs id (letters, digits, '_' and '-')",
        ));
    }
    Ok(Some(id.to_owned()))
}

/// `en`, `pt-br`, `zh`: a language code, lowercased.
pub(super) fn language(raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(code) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let code = code.to_ascii_lowercase();
    let (base, region) = match code.split_once('-') {
        Some((base, region)) => (base, Some(region)),
        None => (code.as_str(), None),
    };
    let letters = |s: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase())
    };
    if letters(base, 2..=3) && region.is_none_or(|r| letters(r, 2..=4)) {
        Ok(Some(code))
    } else {
        Err(AppError::validation(
            "language",
            "must be a language code such as en or pt-br",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes() {
        assert_eq!(language(Some("EN")).expect("ok").as_deref(), Some("en"));
        assert_eq!(
            language(Some("pt-BR")).expect("ok").as_deref(),
            Some("pt-br")
        );
        assert_eq!(language(None).expect("ok"), None);
        for bad in ["english", "e", "en_us", "en-", "12", "en-usa-x"] {
            assert!(language(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_ids_cannot_smuggle_paths() {
        assert_eq!(
            remote_id("voice_id", Some(" JBFqnCBsd6RMkjVDRZzb "))
                .expect("ok")
                .as_deref(),
            Some("JBFqnCBsd6RMkjVDRZzb")
        );
        for bad in ["../x", "a b", "a/b", "a?b", &"x".repeat(101)] {
            assert!(remote_id("voice_id", Some(bad)).is_err(), "{bad}");
        }
    }
}
