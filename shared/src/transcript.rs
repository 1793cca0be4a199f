//! A conversation's turns as they are stored (`transcripts.speaker_segments`) and served: a
//! call's transcript, and a chat's messages on its lead's timeline.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One turn of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpeakerSegment {
    pub speaker: SegmentSpeaker,
    pub text: String,
    /// Seconds into the call.
    pub timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SegmentSpeaker {
    Agent,
    User,
}
