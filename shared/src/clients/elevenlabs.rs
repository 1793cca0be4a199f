//! The ElevenLabs Agents Platform API, for the endpoints we use. Every request carries the
//! `xi-api-key` from Secrets Manager, has a timeout, and is retried with backoff on 429, 5xx and
//! timeouts (only where sending it twice is harmless, see [`Idempotency`]). Anything else
//! becomes a 502 `upstream_error` whose details carry ElevenLabs' own message.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::{Method, Response, Url};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::retry::{self, Idempotency};
use crate::{config::RetryPolicy, error::AppError};

#[derive(Clone)]
pub struct ElevenLabs {
    http: reqwest::Client,
    base_url: Url,
    api_key: String,
    retry: RetryPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ElevenLabsError {
    #[error("ElevenLabs answered {status}: {message}")]
    Api {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    #[error("ElevenLabs did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ElevenLabs could not be reached: {0}")]
    Unreachable(String),
    #[error("ElevenLabs sent an answer we cannot read: {0}")]
    Malformed(String),
}

impl ElevenLabsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

impl From<ElevenLabsError> for AppError {
    fn from(err: ElevenLabsError) -> Self {
        tracing::warn!(error = %err, "ElevenLabs request failed");
        let details = match &err {
            ElevenLabsError::Api {
                status,
                code,
                message,
            } => json!({
                "service": "elevenlabs",
                "status": status.as_u16(),
                "code": code,
                "message": message,
            }),
            ElevenLabsError::Timeout(_) => json!({"service": "elevenlabs", "reason": "timeout"}),
            ElevenLabsError::Unreachable(_) => {
                json!({"service": "elevenlabs", "reason": "unreachable"})
            }
            ElevenLabsError::Malformed(_) => {
                json!({"service": "elevenlabs", "reason": "malformed_response"})
            }
        };
        AppError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "the voice platform (ElevenLabs) could not complete the request",
        )
        .with_details(details)
    }
}

pub type ElevenLabsResult<T> = Result<T, ElevenLabsError>;

#[derive(Debug, Clone, Deserialize)]
pub struct AgentsPage {
    #[serde(default)]
    pub agents: Vec<AgentSummary>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentSummary {
    pub agent_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at_unix_secs: Option<i64>,
    #[serde(default)]
    pub last_call_time_unix_secs: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhoneNumber {
    pub phone_number_id: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub supports_outbound: Option<bool>,
    /// `twilio`, `sip_trunk`, `exotel`, ...
    #[serde(default)]
    pub provider: Option<String>,
}

/// `GET /v1/convai/conversations` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversationQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_start_after_unix: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationsPage {
    #[serde(default)]
    pub conversations: Vec<ConversationSummary>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationSummary {
    pub conversation_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub start_time_unix_secs: Option<i64>,
}

/// Dynamic variables hold scalars only (ElevenLabs refuses objects and arrays).
pub type DynamicVariables = Map<String, Value>;

#[derive(Debug, Clone, Serialize)]
pub struct OutboundCall<'a> {
    pub agent_id: &'a str,
    pub agent_phone_number_id: &'a str,
    pub to_number: &'a str,
    pub conversation_initiation_client_data: ClientData,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientData {
    pub dynamic_variables: DynamicVariables,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboundCallStarted {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default, rename = "callSid", alias = "call_sid")]
    pub call_sid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchCall<'a> {
    pub call_name: &'a str,
    pub agent_id: &'a str,
    pub agent_phone_number_id: &'a str,
    /// Always sent (null means now): older API versions require the field.
    pub scheduled_time_unix: Option<i64>,
    pub recipients: Vec<BatchRecipient>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchRecipient {
    pub id: String,
    pub phone_number: String,
    pub conversation_initiation_client_data: ClientData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BatchSubmitted {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
}

impl ElevenLabs {
    pub fn new(http: reqwest::Client, base_url: Url, api_key: String, retry: RetryPolicy) -> Self {
        Self {
            http,
            base_url,
            api_key,
            retry,
        }
    }

    /// A client with the current API key from Secrets Manager (cached; a rotation is picked up
    /// within the cache TTL).
    pub async fn create_agent(&self, body: &Value) -> ElevenLabsResult<String> {
        #[derive(Deserialize)]
        struct Created {
            agent_id: String,
        }
        let created: Created = self
            .call(
                Method::POST,
                "convai/agents/create",
                &(),
                Some(body),
                Idempotency::Unsafe,
            )
            .await?;
        Ok(created.agent_id)
    }

    /// The full agent as ElevenLabs stores it (conversation_config, platform_settings, ...).
    pub async fn get_agent(&self, agent_id: &str) -> ElevenLabsResult<Value> {
        let path = format!("convai/agents/{}", segment(agent_id));
        self.call(Method::GET, &path, &(), None, Idempotency::Safe)
            .await
    }

    pub async fn update_agent(&self, agent_id: &str, body: &Value) -> ElevenLabsResult<Value> {
        let path = format!("convai/agents/{}", segment(agent_id));
        self.call(Method::PATCH, &path, &(), Some(body), Idempotency::Safe)
            .await
    }

    /// Deletes the agent; an agent that is already gone counts as deleted.
    pub async fn delete_agent(&self, agent_id: &str) -> ElevenLabsResult<()> {
        let path = format!("convai/agents/{}", segment(agent_id));
        match self
            .call::<Value>(Method::DELETE, &path, &(), None, Idempotency::Safe)
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn list_agents(&self, cursor: Option<&str>) -> ElevenLabsResult<AgentsPage> {
        let query = [("page_size", Some("100")), ("cursor", cursor)];
        self.call(
            Method::GET,
            "convai/agents",
            &query,
            None,
            Idempotency::Safe,
        )
        .await
    }

    pub async fn list_phone_numbers(&self) -> ElevenLabsResult<Vec<PhoneNumber>> {
        self.call(
            Method::GET,
            "convai/phone-numbers",
            &(),
            None,
            Idempotency::Safe,
        )
        .await
    }

    pub async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> ElevenLabsResult<ConversationsPage> {
        self.call(
            Method::GET,
            "convai/conversations",
            query,
            None,
            Idempotency::Safe,
        )
        .await
    }

    /// The conversation in the shape of a post-call transcription webhook's `data`.
    pub async fn get_conversation(&self, conversation_id: &str) -> ElevenLabsResult<Value> {
        let path = format!("convai/conversations/{}", segment(conversation_id));
        self.call(Method::GET, &path, &(), None, Idempotency::Safe)
            .await
    }

    /// The call's MP3, or None when ElevenLabs has no audio for it.
    pub async fn conversation_audio(
        &self,
        conversation_id: &str,
    ) -> ElevenLabsResult<Option<Vec<u8>>> {
        let path = format!("convai/conversations/{}/audio", segment(conversation_id));
        match self
            .send(Method::GET, &path, &(), None, Idempotency::Safe)
            .await
        {
            Ok(response) => {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| self.transport_error(e))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Places one call. Never retried once it may have reached ElevenLabs: a repeat would ring
    /// the person twice.
    pub async fn outbound_call(
        &self,
        call: &OutboundCall<'_>,
    ) -> ElevenLabsResult<OutboundCallStarted> {
        let body =
            serde_json::to_value(call).map_err(|e| ElevenLabsError::Malformed(e.to_string()))?;
        self.call(
            Method::POST,
            "convai/twilio/outbound-call",
            &(),
            Some(&body),
            Idempotency::Unsafe,
        )
        .await
    }

    pub async fn submit_batch(&self, batch: &BatchCall<'_>) -> ElevenLabsResult<BatchSubmitted> {
        let body =
            serde_json::to_value(batch).map_err(|e| ElevenLabsError::Malformed(e.to_string()))?;
        self.call(
            Method::POST,
            "convai/batch-calling/submit",
            &(),
            Some(&body),
            Idempotency::Unsafe,
        )
        .await
    }

    /// Cancels a batch's calls not placed yet. Cancelling twice is harmless, so it is retried.
    pub async fn cancel_batch(&self, batch_id: &str) -> ElevenLabsResult<BatchSubmitted> {
        self.call(
            Method::POST,
            &format!("convai/batch-calling/{}/cancel", segment(batch_id)),
            &(),
            None,
            Idempotency::Safe,
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &(impl Serialize + ?Sized),
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> ElevenLabsResult<T> {
        let response = self.send(method, path, query, body, idempotency).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        // An empty 2xx body (DELETE) reads as null.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map_err(|e| ElevenLabsError::Malformed(e.to_string()))
    }

    /// Sends the request, retrying what is worth retrying; answers the first 2xx response.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &(impl Serialize + ?Sized),
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> ElevenLabsResult<Response> {
        let url = self.url(path);
        let build = || {
            let request = self
                .http
                .request(method.clone(), url.clone())
                .timeout(self.retry.timeout)
                .header("xi-api-key", &self.api_key)
                .query(query);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        retry::send(
            &self.retry,
            &format!("ElevenLabs {method} {path}"),
            build,
            |failure| retry::is_retryable(failure, idempotency),
            |response| async move {
                let status = response.status();
                api_error(status, &response.text().await.unwrap_or_default())
            },
            |err| self.transport_error(err),
        )
        .await
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/v1/{path}"));
        url
    }

    fn transport_error(&self, err: reqwest::Error) -> ElevenLabsError {
        if err.is_timeout() {
            ElevenLabsError::Timeout(self.retry.timeout)
        } else {
            ElevenLabsError::Unreachable(err.without_url().to_string())
        }
    }
}

/// One path segment: ids come from our database or a tenant, so they are percent-encoded.
fn segment(id: &str) -> String {
    let mut url = Url::parse("http://x/").expect("static URL");
    url.path_segments_mut()
        .expect("http URL has segments")
        .push(id);
    url.path().trim_start_matches('/').to_owned()
}

/// ElevenLabs' error body: `{"detail":{"code"|"status","message"}}`, a 422 list of
/// `{"loc","msg","type"}`, a bare string, or something else entirely.
fn api_error(status: StatusCode, text: &str) -> ElevenLabsError {
    let detail = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("detail").cloned());
    let (code, message) = match detail {
        Some(Value::Object(detail)) => {
            let field = |name: &str| detail.get(name).and_then(Value::as_str).map(str::to_owned);
            (field("code").or_else(|| field("status")), field("message"))
        }
        Some(Value::Array(items)) => {
            let messages: Vec<String> = items
                .iter()
                .map(|item| {
                    let loc = item["loc"]
                        .as_array()
                        .map(|parts| {
                            parts
                                .iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    format!("{loc}: {}", item["msg"].as_str().unwrap_or("invalid"))
                })
                .collect();
            (Some("validation_error".into()), Some(messages.join("; ")))
        }
        Some(Value::String(message)) => (None, Some(message)),
        _ => (None, None),
    };
    let message = message.unwrap_or_else(|| {
        let snippet: String = text.chars().take(200).collect();
        if snippet.trim().is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            snippet
        }
    });
    ElevenLabsError::Api {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests;
