//! A call's recording as a short-lived link. The MP3 normally arrives with the post-call audio
//! webhook; when it never did, it is fetched once from ElevenLabs' conversation audio endpoint
//! and stored like the webhook would have stored it.

use crate::db::statements::Cached;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    aws::blobs,
    calls::read::Call,
    error::{AppError, AppResult},
    ids::CallId,
    tenant::TenantId,
    AppState,
};

/// Presigned recording links are short-lived.
pub const RECORDING_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// Links are signed as of the start of the current window and stay valid for the TTL past its
/// end: every link handed out lives at least `RECORDING_URL_TTL`, and within a window it is the
/// same link, so a list that embeds links keeps its ETag while nothing else changed.
const LINK_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize, ToSchema)]
pub struct Recording {
    pub call_id: Uuid,
    /// A presigned URL for the MP3; valid until `expires_at`.
    pub recording_url: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn link(state: &AppState, tenant: TenantId, id: CallId) -> AppResult<Recording> {
    let db = state.db().get().await?;
    let row = db
        .cached_query_opt(sql::RECORDING_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .ok_or_else(|| AppError::not_found("call"))?;
    let key = match row.try_get::<_, Option<String>>("recording_key")? {
        Some(key) => key,
        None => {
            let fetchable = row.try_get::<_, &str>("type")? == "call"
                && row.try_get::<_, &str>("status")? != "in_progress"
                && !row.try_get::<_, bool>("checked_recently")?;
            if !fetchable {
                return Err(AppError::not_found("recording"));
            }
            let conversation: String = row.try_get("elevenlabs_conversation_id")?;
            fetch_from_elevenlabs(state, &db, tenant, *id.as_uuid(), &conversation).await?
        }
    };
    let (url, expires_at) = presign(state, &key).await?;
    Ok(Recording {
        call_id: *id.as_uuid(),
        recording_url: url,
        expires_at,
    })
}

/// Puts a playable link into each call that has audio.
pub async fn presign_calls(state: &AppState, calls: &mut [Call]) -> AppResult<()> {
    for call in calls {
        if let Some(key) = &call.recording_key {
            call.recording_url = Some(presign(state, key).await?.0);
        }
    }
    Ok(())
}

async fn presign(state: &AppState, key: &str) -> AppResult<(String, DateTime<Utc>)> {
    let window = LINK_WINDOW.as_secs() as i64;
    let now = Utc::now().timestamp();
    let signed_at = DateTime::from_timestamp(now - now.rem_euclid(window), 0).unwrap_or_default();
    let valid_for = RECORDING_URL_TTL + LINK_WINDOW;
    let expires_at =
        signed_at + chrono::Duration::from_std(valid_for).map_err(AppError::internal)?;
    let links = state.recording_links();
    if let Some(url) = links.get(signed_at.into(), key) {
        return Ok((url, expires_at));
    }
    let url = blobs::presigned_get(
        state.aws(),
        &state.config().aws.recordings_bucket,
        key,
        signed_at.into(),
        valid_for,
    )
    .await?;
    links.put(signed_at.into(), key, &url);
    Ok((url, expires_at))
}

async fn fetch_from_elevenlabs(
    state: &AppState,
    db: &deadpool_postgres::Object,
    tenant: TenantId,
    id: Uuid,
    conversation: &str,
) -> AppResult<String> {
    let audio = state
        .elevenlabs()
        .await?
        .conversation_audio(conversation)
        .await?;
    let Some(mp3) = audio.filter(|bytes| !bytes.is_empty()) else {
        db.cached_execute(sql::MARK_AUDIO_CHECKED, &[&id]).await?;
        return Err(AppError::not_found("recording"));
    };
    let key = store(state, tenant, conversation, mp3).await?;
    // The webhook may have stored it meanwhile: its key is the same object.
    db.cached_execute(sql::KEEP_FIRST_RECORDING_KEY, &[&id, &key])
        .await?;
    Ok(key)
}

/// Stores a call's MP3 (an idempotent overwrite: the object is named by its conversation);
/// returns its object key.
pub async fn store(
    state: &AppState,
    tenant: TenantId,
    conversation_id: &str,
    mp3: Vec<u8>,
) -> AppResult<String> {
    let key = recording_object(tenant, conversation_id);
    blobs::put(
        state.aws(),
        &state.config().aws.recordings_bucket,
        &key,
        mp3,
        "audio/mpeg",
    )
    .await?;
    Ok(key)
}

/// Where a call's MP3 is stored: under its tenant and conversation.
fn recording_object(tenant: TenantId, conversation_id: &str) -> String {
    format!("recordings/{tenant}/{}.mp3", sanitize_key(conversation_id))
}

/// Object keys keep to a safe alphabet whatever the conversation id holds.
fn sanitize_key(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

pub mod sql {
    /// After ElevenLabs said it has no audio, it is not asked again for this long.
    macro_rules! recheck_after {
        () => {
            "1 hour"
        };
    }

    crate::db::statements! {
        pub const RECORDING_OF_TENANT = concat!("SELECT recording_key, elevenlabs_conversation_id, type, status,
            coalesce((metadata->>'audio_checked_at')::timestamptz > now() - interval '", recheck_after!(), "', false)
                AS checked_recently
            FROM calls WHERE id = $1 AND user_id = $2");
        pub const MARK_AUDIO_CHECKED = "UPDATE calls SET metadata = metadata || jsonb_build_object('audio_checked_at', now())
            WHERE id = $1";
        pub const KEEP_FIRST_RECORDING_KEY =
            "UPDATE calls SET recording_key = coalesce(recording_key, $2), updated_at = now() WHERE id = $1";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_sanitized() {
        assert_eq!(sanitize_key("conv_123-ab"), "conv_123-ab");
        assert_eq!(sanitize_key("../../etc/passwd"), "______etc_passwd");
    }
}
