//! Placing calls: one outbound call, or a batch. Both are gated by the tenant's credits and
//! identify tenant and contact in the dynamic variables, so the webhooks that complete the
//! calls land with the right tenant.
//!
//! The gate counts the tenant's outbound calls still ringing as one minute each, and every
//! recipient of a batch not finished yet (now or scheduled) as the credit it holds
//! (`credits::holds`), under a per-tenant advisory lock, so ten simultaneous clicks on a
//! one-credit balance place one call, not ten, and one balance backs one batch, not many. The
//! lock is not the user row: webhooks keep billing while a call is placed.

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    event::{AgentOwner, CallEvent, CallRef, Placed},
    lifecycle,
};
use crate::{
    agents::{self, Agent, AgentType},
    clients::elevenlabs::{BatchCall, BatchRecipient, ClientData, ElevenLabsError, OutboundCall},
    contacts::{self, lookup::CallerVariables, Contact},
    credits::holds,
    error::{AppError, AppResult},
    ids::{AgentId, ContactId, ResourceId},
    phone,
    settings::Settings,
    tenant::{TenantId, VerifiedTenant},
    text, AppState,
};

/// The most contacts one batch may hold.
pub const MAX_BATCH_CONTACTS: usize = 1000;
/// How far ahead a batch may be scheduled: its credits are held until it runs.
pub const MAX_SCHEDULE_DAYS: i64 = 30;

/// `POST /api/calls/outbound`: a contact or a phone number, not both.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OutboundRequest {
    pub agent_id: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundStarted {
    /// Our call id; null in the rare case ElevenLabs did not name the conversation (the
    /// webhook records the call when it ends).
    pub call_id: Option<Uuid>,
    pub conversation_id: Option<String>,
    pub call_sid: Option<String>,
    pub agent_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub phone_number: String,
    pub status: &'static str,
}

/// `POST /api/calls/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchRequest {
    pub agent_id: String,
    pub contact_ids: Vec<String>,
    /// Shown in ElevenLabs; defaults to the agent's name and the date.
    #[serde(default)]
    pub name: Option<String>,
    /// When to start (RFC 3339), within 30 days; now when absent.
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSubmitted {
    pub batch_id: Uuid,
    pub elevenlabs_batch_id: String,
    pub agent_id: Uuid,
    pub name: String,
    pub status: String,
    pub recipients: usize,
    pub scheduled_at: Option<DateTime<Utc>>,
}

pub async fn place_call(
    state: &AppState,
    caller: VerifiedTenant,
    request: &OutboundRequest,
) -> AppResult<OutboundStarted> {
    let tenant = caller.tenant();
    let settings = state.settings().await?;
    let region = settings.phone_region();
    let mut db = state.db().get().await?;
    let agent = calling_agent(&db, tenant, AgentId::parse(&request.agent_id)?).await?;
    let line = line_of(&agent)?;
    let (contact, to_number) = match (&request.contact_id, &request.phone_number) {
        (Some(id), None) => {
            let contact = contacts::find(&db, tenant, ContactId::parse(id)?).await?;
            let number = contact.phone_number.clone();
            (Some(contact), number)
        }
        (None, Some(raw)) => {
            let number = phone::normalize(raw, region).ok_or_else(|| {
                AppError::validation("phone_number", "is not a valid phone number")
            })?;
            (None, number)
        }
        _ => {
            return Err(AppError::validation(
                "contact_id",
                "give either contact_id or phone_number",
            ))
        }
    };
    let destination = phone::destination(&to_number);
    if !settings.allows_destination(&destination) {
        return Err(not_allowed(
            &settings,
            json!({
                "field": "phone_number",
                "country": destination.country,
                "number_type": destination.number_type,
            }),
        ));
    }
    let client = state.elevenlabs().await?;

    let tx = db.transaction().await?;
    require_credits(&tx, tenant, settings.min_call_balance).await?;
    let started = client
        .outbound_call(&OutboundCall {
            agent_id: &agent.elevenlabs_agent_id,
            agent_phone_number_id: line,
            to_number: &to_number,
            conversation_initiation_client_data: ClientData {
                dynamic_variables: dynamic_variables(tenant, contact.as_ref(), &to_number),
            },
        })
        .await
        .map_err(placement_failed)?;
    if started.success == Some(false) {
        return Err(
            AppError::upstream("the voice platform (ElevenLabs) did not place the call")
                .with_details(json!({"service": "elevenlabs", "message": started.message})),
        );
    }
    let call_id = match &started.conversation_id {
        Some(conversation_id) => Some(
            lifecycle::apply(
                &tx,
                &settings,
                &CallRef {
                    agent: AgentOwner {
                        agent_id: agent.id,
                        tenant,
                        is_chat: agent.kind == AgentType::Chat,
                    },
                    conversation_id: conversation_id.clone(),
                    event_at: Utc::now(),
                },
                &CallEvent::Placed(Placed {
                    to_number: to_number.clone(),
                    line: line.to_owned(),
                    contact_id: contact.as_ref().map(|c| c.id),
                    call_sid: started.call_sid.clone(),
                }),
            )
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    Ok(OutboundStarted {
        call_id,
        conversation_id: started.conversation_id,
        call_sid: started.call_sid,
        agent_id: agent.id,
        contact_id: contact.map(|c| c.id),
        phone_number: to_number,
        status: "in_progress",
    })
}

pub async fn submit_batch(
    state: &AppState,
    caller: VerifiedTenant,
    request: &BatchRequest,
) -> AppResult<BatchSubmitted> {
    let tenant = caller.tenant();
    let settings = state.settings().await?;
    if request.contact_ids.is_empty() || request.contact_ids.len() > MAX_BATCH_CONTACTS {
        return Err(AppError::validation(
            "contact_ids",
            format!("must hold 1 to {MAX_BATCH_CONTACTS} contact ids"),
        ));
    }
    let ids = request
        .contact_ids
        .iter()
        .map(|id| ContactId::parse(id))
        .collect::<AppResult<Vec<_>>>()?;
    let name = text::optional_line("name", request.name.as_deref(), 200)?;
    if request
        .scheduled_at
        .is_some_and(|at| at < Utc::now() - chrono::Duration::minutes(5))
    {
        return Err(AppError::validation(
            "scheduled_at",
            "must not be in the past",
        ));
    }
    // A date years ahead (a typo) would hold its credits that long.
    if request
        .scheduled_at
        .is_some_and(|at| at > Utc::now() + chrono::Duration::days(MAX_SCHEDULE_DAYS))
    {
        return Err(AppError::validation(
            "scheduled_at",
            format!("must be within {MAX_SCHEDULE_DAYS} days"),
        ));
    }
    let mut db = state.db().get().await?;
    let agent = calling_agent(&db, tenant, AgentId::parse(&request.agent_id)?).await?;
    let line = line_of(&agent)?;
    let recipients = one_per_number(contacts::find_all(&db, tenant, &ids).await?);
    let refused: Vec<Value> = recipients
        .iter()
        .filter_map(|contact| {
            let destination = phone::destination(&contact.phone_number);
            (!settings.allows_destination(&destination)).then(|| {
                json!({"contact_id": contact.id, "country": destination.country,
                       "number_type": destination.number_type})
            })
        })
        .collect();
    if !refused.is_empty() {
        return Err(not_allowed(
            &settings,
            json!({
                "field": "contact_ids",
                "refused": refused.iter().take(50).collect::<Vec<_>>(),
                "refused_count": refused.len(),
            }),
        ));
    }
    let name =
        name.unwrap_or_else(|| format!("{} {}", agent.name, Utc::now().format("%Y-%m-%d %H:%M")));
    let client = state.elevenlabs().await?;

    let tx = db.transaction().await?;
    // One minute per contact, and never below the minimum for a single call.
    let needed = i64::try_from(recipients.len())
        .unwrap_or(i64::MAX)
        .max(settings.min_call_balance);
    require_credits(&tx, tenant, needed).await?;
    let submitted = client
        .submit_batch(&BatchCall {
            call_name: &name,
            agent_id: &agent.elevenlabs_agent_id,
            agent_phone_number_id: line,
            scheduled_time_unix: request.scheduled_at.map(|at| at.timestamp()),
            recipients: recipients
                .iter()
                .map(|contact| BatchRecipient {
                    id: contact.id.to_string(),
                    phone_number: contact.phone_number.clone(),
                    conversation_initiation_client_data: ClientData {
                        dynamic_variables: dynamic_variables(
                            tenant,
                            Some(contact),
                            &contact.phone_number,
                        ),
                    },
                })
                .collect(),
        })
        .await
        .map_err(placement_failed)?;
    let status = submitted.status.unwrap_or_else(|| "pending".into());
    let recipient_count = i32::try_from(recipients.len()).unwrap_or(i32::MAX);
    let batch_id: Uuid = tx
        .cached_query_one(
            sql::INSERT_BATCH,
            &[
                tenant.as_uuid(),
                &agent.id,
                &submitted.id,
                &name,
                &status,
                &recipient_count,
                &request.scheduled_at,
            ],
        )
        .await?
        .try_get(0)?;
    let held: Vec<holds::Recipient> = recipients
        .iter()
        .map(|c| holds::Recipient {
            recipient_id: c.id.to_string(),
            phone_number: &c.phone_number,
        })
        .collect();
    holds::hold_batch(
        &tx,
        tenant,
        batch_id,
        &held,
        request.scheduled_at.unwrap_or_else(Utc::now),
    )
    .await?;
    tx.commit().await?;
    Ok(BatchSubmitted {
        batch_id,
        elevenlabs_batch_id: submitted.id,
        agent_id: agent.id,
        name,
        status,
        recipients: recipients.len(),
        scheduled_at: request.scheduled_at,
    })
}

/// ElevenLabs' failure to place a call or a batch. One it did not answer in time may still
/// have been placed: the answer says so, as trying again at once could call people twice.
fn placement_failed(err: ElevenLabsError) -> AppError {
    let uncertain = matches!(err, ElevenLabsError::Timeout(_));
    let mut error = AppError::from(err);
    if uncertain {
        error.message = "ElevenLabs did not answer in time: the calls may have been placed; \
            check the calls list before trying again"
            .into();
        if let Some(details) = error.details.as_mut() {
            details["may_have_been_placed"] = json!(true);
        }
    }
    error
}

/// A number outside the admin's outbound policy: `details` says which, with the policy.
fn not_allowed(settings: &Settings, mut details: Value) -> AppError {
    details["allowed_countries"] = json!(settings.outbound_countries);
    details["allowed_number_types"] = json!(settings.outbound_number_types);
    AppError::forbidden(
        "destination_not_allowed",
        "calls to this destination are not allowed (country or number type); ask an administrator",
    )
    .with_details(details)
}

/// The agent, if it can place calls: the tenant's, active, a voice agent.
async fn calling_agent(
    db: &deadpool_postgres::Client,
    tenant: TenantId,
    id: AgentId,
) -> AppResult<Agent> {
    let agent = agents::find(db, tenant, id).await?;
    if agent.kind == AgentType::Chat {
        return Err(AppError::validation(
            "agent_id",
            "is a chat agent; only call agents place calls",
        ));
    }
    if !agent.is_active {
        return Err(AppError::conflict(
            "agent_inactive",
            "the agent is deactivated; activate it to place calls",
        ));
    }
    Ok(agent)
}

fn line_of(agent: &Agent) -> AppResult<&str> {
    agent.phone_number_id.as_deref().ok_or_else(|| {
        AppError::conflict(
            "no_phone_number",
            "the agent has no outbound phone number; set phone_number_id on the agent",
        )
    })
}

/// Refuses with 402 unless the balance, less one credit per outbound call still ringing,
/// covers `needed`. Holds the tenant's placement lock until the transaction ends.
async fn require_credits(tx: &Transaction<'_>, tenant: TenantId, needed: i64) -> AppResult<()> {
    tx.cached_execute(sql::LOCK_TENANT_PLACEMENTS, &[tenant.as_uuid()])
        .await?;
    let row = tx
        .cached_query_one(sql::BALANCE_AND_RINGING, &[tenant.as_uuid()])
        .await?;
    let (balance, ringing): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    // Suspended since the request was authenticated: under this lock, a suspension's
    // cancellation of the tenant's batches waits for a placement in flight, or it sees this.
    if row.try_get::<_, &str>(2)? == "suspended" {
        return Err(crate::users::suspended_refusal());
    }
    let held = holds::active(tx, tenant).await?;
    if balance - ringing - held < needed {
        return Err(AppError::payment_required(
            "insufficient_credits",
            "not enough credits to place this call; buy credits to continue",
        )
        .with_details(json!({
            "balance": balance,
            "held_by_calls_in_progress": ringing,
            "held_by_batches": held,
            "required": needed,
        })));
    }
    Ok(())
}

/// The same names for every call, inbound ones included ([`CallerVariables`]), each with a
/// value (empty when unknown): ElevenLabs ends a conversation whose prompt or first message
/// uses a variable it was not given. `tenant_id` and `contact_id` let the webhook cross-check.
/// Scalars only: ElevenLabs refuses objects.
fn dynamic_variables(
    tenant: TenantId,
    contact: Option<&Contact>,
    number: &str,
) -> Map<String, Value> {
    match serde_json::to_value(CallerVariables::of(Some(tenant), contact, Some(number))) {
        Ok(Value::Object(variables)) => variables,
        _ => Map::new(),
    }
}

/// Contacts with distinct phone numbers (a person is called once per batch).
fn one_per_number(contacts: Vec<Contact>) -> Vec<Contact> {
    let mut seen = std::collections::HashSet::new();
    contacts
        .into_iter()
        .filter(|c| seen.insert(c.phone_number.clone()))
        .collect()
}

pub mod sql {
    /// Outbound calls older than this that never completed no longer hold credits back.
    macro_rules! ringing_window {
        () => {
            "2 hours"
        };
    }

    crate::db::statements! {
        pub const INSERT_BATCH = "INSERT INTO call_batches
                (user_id, agent_id, elevenlabs_batch_id, name, status, recipients, scheduled_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        pub const LOCK_TENANT_PLACEMENTS =
            "SELECT pg_advisory_xact_lock(hashtextextended('outbound:' || $1::uuid::text, 0))";
        pub const BALANCE_AND_RINGING = concat!("SELECT u.credits,
                (SELECT count(*) FROM calls c
                 WHERE c.user_id = u.id AND c.status = 'in_progress'
                   AND c.direction = 'outbound'
                   AND c.created_at > now() - interval '", ringing_window!(), "'),
                u.status
            FROM users u WHERE u.id = $1");
    }
}
