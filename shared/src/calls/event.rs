//! What happened to a call, as typed facts: the webhook parses a provider's payload into a
//! [`CallEvent`] at the edge, and [`super::lifecycle::apply`] is the one place that turns an
//! event into writes. Nothing here touches the database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{leads::scoring::Analysis, tenant::TenantId};

/// The local agent a call belongs to (soft-deleted agents too: their calls still arrive and
/// still belong to the tenant).
#[derive(Debug, Clone)]
pub struct AgentOwner {
    pub agent_id: Uuid,
    pub tenant: TenantId,
    pub is_chat: bool,
}

/// Which call an event is about, and when it happened.
#[derive(Debug, Clone)]
pub struct CallRef {
    pub agent: AgentOwner,
    pub conversation_id: String,
    pub event_at: DateTime<Utc>,
}

impl CallRef {
    /// The `calls.type` of a conversation with this agent.
    pub fn kind(&self) -> &'static str {
        super::read::CallKind::of(self.agent.is_chat).as_str()
    }
}

#[derive(Debug, Clone)]
pub enum CallEvent {
    /// We placed the call and ElevenLabs accepted it.
    Placed(Placed),
    /// The conversation ended: its transcript, figures and (usually) its analysis.
    Transcribed(Box<Transcript>),
    /// The recording is stored at this object key.
    Recorded { object_key: String },
    /// The call could not be placed.
    InitiationFailed {
        /// The number dialled, as the provider wrote it.
        to: Option<String>,
        reason: String,
    },
    /// A (re-)analysis of the call.
    Analyzed(Analysis),
}

impl CallEvent {
    /// The provider's name for this kind of event (recorded with the processed event).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Placed(_) => "placed",
            Self::Transcribed(_) => "post_call_transcription",
            Self::Recorded { .. } => "post_call_audio",
            Self::InitiationFailed { .. } => "call_initiation_failure",
            Self::Analyzed(_) => "call_analytics",
        }
    }
}

/// A call we placed.
#[derive(Debug, Clone)]
pub struct Placed {
    /// E.164.
    pub to_number: String,
    /// Our phone line's ElevenLabs id.
    pub line: String,
    pub contact_id: Option<Uuid>,
    pub call_sid: Option<String>,
}

/// A call's status. It only moves forward: in_progress -> completed | failed, and a final
/// status stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    InProgress,
    Completed,
    Failed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(stored: &str) -> Self {
        match stored {
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => Self::InProgress,
        }
    }

    pub fn is_terminal(self) -> bool {
        self != Self::InProgress
    }

    /// The status after an event reporting `reported` reaches a call that is `self`.
    pub fn merged(self, reported: Self) -> Self {
        if self.is_terminal() {
            self
        } else {
            reported
        }
    }
}

/// The facts of an ended conversation.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub status: Option<CallStatus>,
    pub is_chat: bool,
    /// inbound or outbound.
    pub direction: Option<String>,
    /// The other party's number, as the provider wrote it.
    pub other_party: Option<String>,
    pub agent_number: Option<String>,
    /// The telephony provider (twilio, sip_trunk).
    pub provider: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_seconds: i64,
    pub cost: Option<i64>,
    pub termination_reason: Option<String>,
    pub dynamic_variables: Map<String, Value>,
    /// ElevenLabs' id for the end user (chats: the site's visitor).
    pub user_id: Option<String>,
    pub batch_call_id: Option<String>,
    pub batch_recipient_id: Option<String>,
    pub turns: Vec<Turn>,
    pub analysis: Option<Analysis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Agent,
    User,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// Seconds into the call.
    pub at_seconds: i64,
}

/// Whole credits for a call: one per started minute (2:13 -> 3).
pub fn credits_for(duration_seconds: i64) -> i64 {
    if duration_seconds <= 0 {
        0
    } else {
        (duration_seconds + 59) / 60
    }
}

/// The ledger reference of a conversation's usage charge.
pub fn usage_reference(conversation_id: &str) -> String {
    format!("elevenlabs:{conversation_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_minute_is_a_credit() {
        assert_eq!(credits_for(0), 0);
        assert_eq!(credits_for(-5), 0);
        assert_eq!(credits_for(1), 1);
        assert_eq!(credits_for(60), 1);
        assert_eq!(credits_for(61), 2);
        assert_eq!(credits_for(133), 3);
    }

    #[test]
    fn status_never_goes_backwards() {
        use CallStatus::*;
        assert_eq!(InProgress.merged(Completed), Completed);
        assert_eq!(Completed.merged(InProgress), Completed);
        assert_eq!(Failed.merged(Completed), Failed);
        assert_eq!(Completed.merged(Failed), Completed);
    }
}
