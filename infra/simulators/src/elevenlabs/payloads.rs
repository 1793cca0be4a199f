//! Builders for conversations and post-call webhook events, shared by `/dev/simulate-call`, the
//! outbound-call endpoint and tests (which can build the same payloads without HTTP).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{random_id, SIM_PHONE_NUMBER, SIM_PHONE_NUMBER_ID};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An interested lead; the analysis says `success`.
    #[default]
    Success,
    /// Not interested; the analysis says `failure` and scores are low.
    Failure,
    /// The call never connected (busy): only `call_initiation_failure` is sent.
    InitiationFailure,
    /// A text-only conversation: no phone call, no audio.
    Chat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    #[default]
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Everything a simulated call is built from. [`CallParams::new`] fills realistic random values;
/// override any field before building.
#[derive(Clone, Debug)]
pub struct CallParams {
    pub agent_id: String,
    pub agent_name: String,
    pub conversation_id: String,
    pub outcome: Outcome,
    pub direction: Direction,
    pub duration_secs: i64,
    /// The other party's number (`external_number`).
    pub phone_number: String,
    pub start_time_unix_secs: i64,
    /// `event_timestamp` of the webhook envelopes.
    pub event_timestamp: i64,
    pub call_sid: String,
    pub stream_sid: String,
    /// Whether the call has audio (ignored for chat and initiation failures).
    pub audio: bool,
    /// Echoed in `conversation_initiation_client_data.dynamic_variables`, plus `system__*` ones.
    pub dynamic_variables: Map<String, Value>,
    /// Other keys of `conversation_initiation_client_data` to echo (overrides, user_id, ...).
    pub client_data_extra: Map<String, Value>,
    pub user_id: Option<String>,
    /// Data-collection values laid over the outcome's defaults.
    pub scores: Option<Map<String, Value>>,
}

impl CallParams {
    pub fn new(agent_id: impl Into<String>, outcome: Outcome, duration_secs: i64) -> Self {
        let now = chrono::Utc::now().timestamp();
        let duration_secs = match outcome {
            Outcome::InitiationFailure => 0,
            _ => duration_secs.max(1),
        };
        Self {
            agent_id: agent_id.into(),
            agent_name: "Simulated agent".into(),
            conversation_id: random_id("conv_", 26),
            outcome,
            direction: Direction::Outbound,
            duration_secs,
            phone_number: random_phone(),
            start_time_unix_secs: now - duration_secs - 3,
            event_timestamp: now,
            call_sid: random_id("CA", 32),
            stream_sid: random_id("MZ", 32),
            audio: true,
            dynamic_variables: Map::new(),
            client_data_extra: Map::new(),
            user_id: None,
            scores: None,
        }
    }

    pub fn has_audio(&self) -> bool {
        self.audio && matches!(self.outcome, Outcome::Success | Outcome::Failure)
    }

    fn is_phone_call(&self) -> bool {
        self.outcome != Outcome::Chat
    }

    fn phone_call(&self) -> Value {
        json!({
            "type": "twilio",
            "direction": self.direction.as_str(),
            "phone_number_id": SIM_PHONE_NUMBER_ID,
            "agent_number": SIM_PHONE_NUMBER,
            "external_number": self.phone_number,
            "stream_sid": self.stream_sid,
            "call_sid": self.call_sid,
        })
    }

    fn client_data(&self) -> Value {
        let mut variables = self.dynamic_variables.clone();
        variables.insert("system__agent_id".into(), json!(self.agent_id));
        variables.insert(
            "system__conversation_id".into(),
            json!(self.conversation_id),
        );
        if self.is_phone_call() {
            let (caller, called) = match self.direction {
                Direction::Inbound => (self.phone_number.as_str(), SIM_PHONE_NUMBER),
                Direction::Outbound => (SIM_PHONE_NUMBER, self.phone_number.as_str()),
            };
            variables.insert("system__caller_id".into(), json!(caller));
            variables.insert("system__called_number".into(), json!(called));
        }
        let mut data = self.client_data_extra.clone();
        data.insert("dynamic_variables".into(), Value::Object(variables));
        Value::Object(data)
    }
}

/// `+1555` and seven random digits.
fn random_phone() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000;
    format!("+1555{n:07}")
}

/// `{"type":..,"event_timestamp":..,"data":..}`.
pub fn envelope(event_type: &str, data: Value, event_timestamp: i64) -> Value {
    json!({ "type": event_type, "event_timestamp": event_timestamp, "data": data })
}

/// The stored conversation: the `data` of `post_call_transcription` and GET conversation's body.
/// For [`Outcome::InitiationFailure`] it is the `failed` conversation that never connected.
pub fn conversation(params: &CallParams) -> Value {
    if params.outcome == Outcome::InitiationFailure {
        let mut data = in_progress_conversation(params);
        data["status"] = json!("failed");
        data["metadata"]["termination_reason"] = json!("Call initiation failed: busy");
        return data;
    }
    let mut metadata = json!({
        "start_time_unix_secs": params.start_time_unix_secs,
        "accepted_time_unix_secs": params.start_time_unix_secs,
        "call_duration_secs": params.duration_secs,
        "cost": params.duration_secs * 10,
        "termination_reason": "end_call tool was called.",
        "main_language": "en",
        "text_only": !params.is_phone_call(),
    });
    if params.is_phone_call() {
        metadata["phone_call"] = params.phone_call();
    }
    let has_audio = params.has_audio();
    json!({
        "agent_id": params.agent_id,
        "conversation_id": params.conversation_id,
        "status": "done",
        "user_id": params.user_id,
        "agent_name": params.agent_name,
        "has_audio": has_audio,
        "has_user_audio": has_audio,
        "has_response_audio": has_audio,
        "transcript": transcript(params),
        "metadata": metadata,
        "analysis": analysis(params),
        "conversation_initiation_client_data": params.client_data(),
    })
}

/// A phone call that has started and not finished (what outbound-call stores).
pub fn in_progress_conversation(params: &CallParams) -> Value {
    json!({
        "agent_id": params.agent_id,
        "conversation_id": params.conversation_id,
        "status": "in-progress",
        "user_id": params.user_id,
        "agent_name": params.agent_name,
        "has_audio": false,
        "has_user_audio": false,
        "has_response_audio": false,
        "transcript": [],
        "metadata": {
            "start_time_unix_secs": params.start_time_unix_secs,
            "accepted_time_unix_secs": null,
            "call_duration_secs": 0,
            "cost": 0,
            "termination_reason": "",
            "main_language": "en",
            "text_only": false,
            "phone_call": params.phone_call(),
        },
        "analysis": null,
        "conversation_initiation_client_data": params.client_data(),
    })
}

pub fn transcription_event(params: &CallParams) -> Value {
    envelope(
        "post_call_transcription",
        conversation(params),
        params.event_timestamp,
    )
}

pub fn audio_event(params: &CallParams) -> Value {
    let audio = base64::engine::general_purpose::STANDARD.encode(fake_mp3(params.duration_secs));
    envelope(
        "post_call_audio",
        json!({
            "agent_id": params.agent_id,
            "conversation_id": params.conversation_id,
            "full_audio": audio,
        }),
        params.event_timestamp,
    )
}

pub fn initiation_failure_event(params: &CallParams) -> Value {
    envelope(
        "call_initiation_failure",
        json!({
            "agent_id": params.agent_id,
            "conversation_id": params.conversation_id,
            "failure_reason": "busy",
            "metadata": {
                "type": "twilio",
                "body": {
                    "CallSid": params.call_sid,
                    "CallStatus": "busy",
                    "To": params.phone_number,
                    "From": SIM_PHONE_NUMBER,
                },
            },
        }),
        params.event_timestamp,
    )
}

/// The webhooks ElevenLabs would send for this call, in order.
pub fn events(params: &CallParams) -> Vec<Value> {
    if params.outcome == Outcome::InitiationFailure {
        return vec![initiation_failure_event(params)];
    }
    let mut events = vec![transcription_event(params)];
    if params.has_audio() {
        events.push(audio_event(params));
    }
    events
}

/// About `duration_secs * 200` bytes of an MP3 file: an ID3v2 header and silent MPEG frames.
pub fn fake_mp3(duration_secs: i64) -> Vec<u8> {
    const FRAME_LEN: usize = 417; // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    let len = usize::try_from(duration_secs.max(1))
        .unwrap_or(1)
        .saturating_mul(200);
    let mut out = Vec::with_capacity(len + FRAME_LEN);
    out.extend_from_slice(b"ID3\x04\x00\x00\x00\x00\x00\x00");
    while out.len() < len {
        let start = out.len();
        out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        out.resize(start + FRAME_LEN, 0);
    }
    out.truncate(len);
    out
}

/// `ConversationSummary` of a stored conversation.
pub fn summary(data: &Value) -> Value {
    let analysis = &data["analysis"];
    json!({
        "agent_id": data["agent_id"],
        "agent_name": data["agent_name"],
        "conversation_id": data["conversation_id"],
        "start_time_unix_secs": data["metadata"]["start_time_unix_secs"],
        "call_duration_secs": data["metadata"]["call_duration_secs"],
        "message_count": data["transcript"].as_array().map_or(0, Vec::len),
        "status": data["status"],
        "call_successful": analysis.get("call_successful").cloned().unwrap_or(json!("unknown")),
        "transcript_summary": analysis.get("transcript_summary").cloned().unwrap_or(Value::Null),
        "call_summary_title": analysis.get("call_summary_title").cloned().unwrap_or(Value::Null),
        "termination_reason": data["metadata"]["termination_reason"],
        "direction": data["metadata"]["phone_call"]["direction"],
        "main_language": data["metadata"]["main_language"],
    })
}

fn transcript(params: &CallParams) -> Vec<Value> {
    let name = ["customer_name", "first_name", "name"]
        .iter()
        .find_map(|k| params.dynamic_variables.get(*k).and_then(Value::as_str))
        .unwrap_or("there");
    let greeting = format!("Hi {name}, this is Alex. Do you have a couple of minutes?");
    let lines: Vec<&str> = match params.outcome {
        Outcome::Failure => vec![
            greeting.as_str(),
            "Not really. What is this about?",
            "We help teams automate their phone outreach. Is that something you are looking at?",
            "No, we are not interested. Please take me off your list.",
            "Understood, I am sorry to have bothered you. Have a good day.",
        ],
        _ => vec![
            greeting.as_str(),
            "Sure, I was actually looking into this.",
            "Great. What is prompting the search right now?",
            "Our current setup cannot keep up. We need something within the next month or so.",
            "Understood. Would a short demo and our pricing sheet help?",
            "Yes, send the pricing over and let us book the demo.",
            "Done. You will get an email shortly. Thanks for your time!",
        ],
    };
    let turns = i64::try_from(lines.len()).unwrap_or(1);
    lines
        .iter()
        .zip(0_i64..)
        .map(|(message, i)| {
            json!({
                "role": if i % 2 == 0 { "agent" } else { "user" },
                "message": message,
                "time_in_call_secs": i * params.duration_secs / turns,
                "tool_calls": null,
                "tool_results": null,
                "feedback": null,
                "interrupted": false,
            })
        })
        .collect()
}

fn analysis(params: &CallParams) -> Value {
    let success = params.outcome != Outcome::Failure;
    let (summary, title) = match params.outcome {
        Outcome::Failure => (
            "The caller was not interested in automated phone outreach and asked to be removed from the list.",
            "Not interested",
        ),
        Outcome::Chat => (
            "The user is evaluating options, needs a solution within a month, asked for pricing and booked a demo over chat.",
            "Demo requested via chat",
        ),
        _ => (
            "The caller is evaluating options, needs a solution within a month, asked for pricing and booked a demo.",
            "Demo booked",
        ),
    };
    let rationale = if success {
        "Stated by the caller during the conversation."
    } else {
        "The caller showed no interest during the conversation."
    };
    let mut values = default_scores(success);
    if let Some(scores) = &params.scores {
        values.extend(scores.clone());
    }
    let results: Map<String, Value> = values
        .into_iter()
        .map(|(id, value)| {
            let result =
                json!({ "data_collection_id": id, "value": value, "rationale": rationale });
            (id, result)
        })
        .collect();
    json!({
        "call_successful": if success { "success" } else { "failure" },
        "transcript_summary": summary,
        "call_summary_title": title,
        "evaluation_criteria_results": {},
        "data_collection_results": results,
    })
}

/// The data-collection values of a typical interested (or uninterested) lead.
fn default_scores(success: bool) -> Map<String, Value> {
    let values = if success {
        json!({
            "intent_level": "high", "intent_score": 16,
            "intent_reasoning": "The caller is actively evaluating options and asked for a demo.",
            "urgency_level": "soon", "urgency_score": 12,
            "urgency_reasoning": "They want a solution within the next month.",
            "budget_constraint": "flexible", "budget_score": 14,
            "budget_reasoning": "Budget was not raised as a blocker.",
            "fit_alignment": "strong", "fit_score": 17,
            "fit_reasoning": "Their use case matches the offer closely.",
            "engagement_health": "high", "engagement_score": 15,
            "engagement_reasoning": "The caller asked questions and stayed engaged.",
            "cta_behavior_reasoning": "Accepted the demo and asked for pricing.",
            "cta_pricing_clicked": true, "cta_demo_clicked": true,
            "cta_followup_clicked": false, "cta_sample_clicked": false,
            "cta_escalated_to_human": false,
        })
    } else {
        json!({
            "intent_level": "low", "intent_score": 3,
            "intent_reasoning": "The caller said they are not interested.",
            "urgency_level": "none", "urgency_score": 2,
            "urgency_reasoning": "No timeline was mentioned.",
            "budget_constraint": "unknown", "budget_score": 4,
            "budget_reasoning": "Budget was never discussed.",
            "fit_alignment": "weak", "fit_score": 5,
            "fit_reasoning": "The caller does not do phone outreach.",
            "engagement_health": "low", "engagement_score": 3,
            "engagement_reasoning": "The caller wanted to end the call quickly.",
            "cta_behavior_reasoning": "Declined every call to action.",
            "cta_pricing_clicked": false, "cta_demo_clicked": false,
            "cta_followup_clicked": false, "cta_sample_clicked": false,
            "cta_escalated_to_human": false,
        })
    };
    match values {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
