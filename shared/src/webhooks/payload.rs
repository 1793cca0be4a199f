//! ElevenLabs post-call webhook payloads, parsed leniently (../shared/ref/elevenlabs.md §1):
//! unknown fields and event types are kept, every field but the ids is optional, and numbers
//! may arrive as strings.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use crate::{leads::scoring::Analysis, lenient::int};

/// The body with every NUL character (`\u0000`) taken out of its strings and keys: Postgres
/// stores neither in text nor in jsonb, so one in a chat message, a dynamic variable or a
/// Stripe buyer's name would fail the event's every write (its call never stored, never
/// charged; a held purchase never held, its event never kept). The processor cleans every
/// event's body so. A body that is not JSON is left as it is.
pub fn without_nuls(raw: &str) -> Cow<'_, str> {
    if !raw.contains("\\u0000") {
        return Cow::Borrowed(raw);
    }
    fn clean(value: &mut Value) {
        match value {
            Value::String(text) => text.retain(|c| c != '\0'),
            Value::Array(items) => items.iter_mut().for_each(clean),
            Value::Object(fields) => {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(mut key, mut field)| {
                        key.retain(|c| c != '\0');
                        clean(&mut field);
                        (key, field)
                    })
                    .collect();
            }
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(mut value) => {
            clean(&mut value);
            Cow::Owned(value.to_string())
        }
        Err(_) => Cow::Borrowed(raw),
    }
}

/// `{type, event_timestamp, data}`: the envelope of every ElevenLabs webhook.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub event_timestamp: Option<Value>,
    #[serde(default)]
    pub data: Option<Value>,
}

impl Envelope {
    /// Unix seconds; documented as a number, sometimes typed as a string.
    pub fn timestamp(&self) -> Option<i64> {
        self.event_timestamp.as_ref().and_then(int)
    }
}

/// The fields of `data` that every event type carries.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationRef {
    pub agent_id: String,
    pub conversation_id: String,
}

/// `post_call_transcription` data (the GET conversation shape).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Transcription {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub transcript: Vec<Turn>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub analysis: Option<Analysis>,
    #[serde(default)]
    pub conversation_initiation_client_data: Option<ClientData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Turn {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub time_in_call_secs: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub start_time_unix_secs: Option<Value>,
    #[serde(default)]
    pub call_duration_secs: Option<Value>,
    #[serde(default)]
    pub cost: Option<Value>,
    #[serde(default)]
    pub termination_reason: Option<String>,
    #[serde(default)]
    pub text_only: Option<bool>,
    #[serde(default)]
    pub phone_call: Option<PhoneCall>,
    /// Set on the conversations of a batch call.
    #[serde(default)]
    pub batch_call: Option<BatchCallRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchCallRef {
    #[serde(default)]
    pub batch_call_id: Option<String>,
    #[serde(default)]
    pub batch_call_recipient_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhoneCall {
    #[serde(rename = "type", default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    #[serde(default)]
    pub external_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientData {
    #[serde(default)]
    pub dynamic_variables: Option<Map<String, Value>>,
}

/// `post_call_audio` data: the whole call as base64 MP3.
#[derive(Debug, Clone, Deserialize)]
pub struct Audio {
    pub full_audio: String,
}

/// `call_initiation_failure` data (shape UNCONFIRMED upstream: everything optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InitiationFailure {
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn nuls_are_taken_out_of_strings_and_keys_only() {
        let raw = r#"{"data":{"text":"a\u0000b","k\u0000":"\\u0000 stays","n":1}}"#;
        let clean: serde_json::Value =
            serde_json::from_str(&super::without_nuls(raw)).expect("json");
        assert_eq!(
            clean,
            serde_json::json!({"data": {"text": "ab", "k": "\\u0000 stays", "n": 1}})
        );
        let plain = r#"{"data":{"text":"fine"}}"#;
        assert!(matches!(
            super::without_nuls(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    use super::*;

    #[test]
    fn the_official_example_parses_and_unknown_fields_are_fine() {
        let raw = serde_json::json!({"type":"post_call_transcription","event_timestamp":"1739537297",
            "brand_new_field": {"x": 1},
            "data":{"agent_id":"xyz","conversation_id":"abc","status":"done","user_id":"user123",
            "transcript":[{"role":"agent","message":"Hey there angelo. How are you?","tool_calls":null,
                "time_in_call_secs":0,"conversation_turn_metrics":null},
                {"role":"user","message":null,"time_in_call_secs":"3"}],
            "metadata":{"start_time_unix_secs":1739537297,"call_duration_secs":22,"cost":296,
                "phone_call":{"type":"twilio","direction":"inbound","agent_number":"+15550001111",
                "external_number":"+15552223333","call_sid":"CA1"},"termination_reason":""},
            "analysis":{"evaluation_criteria_results":{},"data_collection_results":{"intent_score":{"value":"12"}},
                "data_collection_results_list":[{"data_collection_id":"urgency_level","value":"high"}],
                "call_successful":"success","transcript_summary":"..."},
            "conversation_initiation_client_data":{"dynamic_variables":{"user_name":"angelo"}}}});
        let envelope: Envelope = serde_json::from_value(raw).expect("envelope");
        assert_eq!(envelope.timestamp(), Some(1_739_537_297));
        let data = envelope.data.expect("data");
        let ids: ConversationRef = serde_json::from_value(data.clone()).expect("ids");
        assert_eq!(ids.conversation_id, "abc");
        let t: Transcription = serde_json::from_value(data).expect("transcription");
        assert_eq!(t.transcript.len(), 2);
        assert_eq!(
            t.metadata.call_duration_secs.as_ref().and_then(int),
            Some(22)
        );
        let analysis = t.analysis.expect("analysis");
        let collected = analysis.collected();
        assert!(collected.contains_key("intent_score") && collected.contains_key("urgency_level"));
    }
}
