//! The one owner of a call's row: every event that changes a call (a call we place, a webhook
//! through the processor, a reconciled conversation) goes through [`apply`], inside the
//! caller's transaction. Applying an event writes the call (its status only moves forward),
//! its transcript, its analytics and lead, its usage charge (reference = conversation id, so a
//! conversation is charged once however often it arrives), a batch call's credit hold, and
//! the daily rollups.

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures::future::try_join;
use serde_json::json;
use uuid::Uuid;

mod transcribed;

use super::{
    event::{AgentOwner, CallEvent, CallRef, CallStatus},
    person::Person,
    rollup::{self, Figures},
};
use crate::{
    credits::holds,
    error::{AppError, AppResult},
    leads::{
        self, analytics,
        scoring::{Analysis, LeadScores, LeadTag},
        CallScore,
    },
    phone,
    settings::Settings,
    tenant::TenantId,
};

/// The code of the error for an event naming a conversation another tenant's call holds: no
/// retry can apply it.
pub const ANOTHER_TENANTS_CONVERSATION: &str = "conversation_of_another_tenant";

/// Applies one event to its call inside the caller's transaction (for a webhook, the one that
/// records the event as processed, so it is applied once); returns the call's id.
pub async fn apply(
    tx: &impl GenericClient,
    settings: &Settings,
    call: &CallRef,
    event: &CallEvent,
) -> AppResult<Uuid> {
    // Without a delivery there is nothing recorded before: the lock's answer is always fresh.
    let ((_, before), found) = try_join(
        lock(tx, call, event, None),
        find(tx, settings, call.agent.tenant, event),
    )
    .await?;
    apply_locked(tx, settings, call, event, before, found).await
}

/// A webhook delivery whose dedup row (`processed_events`, outcome `applied`) is written with
/// the call's lock, so that an event is applied once.
pub struct Delivery<'a> {
    pub event_key: &'a str,
    pub source: &'a str,
}

/// Like [`apply`], recording `delivery` as processed in the statement that locks the tenant
/// and the call (after the tenant's lock, as every event of the tenant orders its locks); an
/// event already recorded is not applied (`None`; the caller rolls back).
pub async fn apply_once(
    tx: &impl GenericClient,
    settings: &Settings,
    call: &CallRef,
    event: &CallEvent,
    delivery: &Delivery<'_>,
) -> AppResult<Option<Uuid>> {
    let ((fresh, before), found) = try_join(
        lock(tx, call, event, Some(delivery)),
        find(tx, settings, call.agent.tenant, event),
    )
    .await?;
    if !fresh {
        return Ok(None);
    }
    apply_locked(tx, settings, call, event, before, found)
        .await
        .map(Some)
}

async fn apply_locked(
    tx: &impl GenericClient,
    settings: &Settings,
    call: &CallRef,
    event: &CallEvent,
    before: Before,
    found: Found,
) -> AppResult<Uuid> {
    if before.tenant != call.agent.tenant {
        return Err(AppError::conflict(
            ANOTHER_TENANTS_CONVERSATION,
            "the conversation id is recorded for another tenant",
        ));
    }
    // A transcription writes a new call's row whole; other events change a stored row.
    let before = match event {
        CallEvent::Transcribed(_) if !before.stored => before,
        _ if !before.stored => insert(tx, call).await?,
        _ => before,
    };
    match event {
        CallEvent::Placed(placed) => {
            // The webhook may have been faster than ElevenLabs' answer to us: its facts stand.
            let metadata =
                json!({"call_sid": placed.call_sid, "agent_phone_number_id": placed.line});
            let updated = tx
                .cached_query_one(
                    sql::SET_PLACED,
                    &[&before.id, &placed.to_number, &placed.contact_id, &metadata],
                )
                .await?;
            // A call already finished (the webhook said it never started) takes its start,
            // and so maybe another day, from here.
            before.roll_up(tx, &updated).await?;
        }
        CallEvent::Transcribed(transcript) => {
            transcribed::transcribed(tx, settings, call, &before, transcript, found).await?
        }
        CallEvent::Recorded { object_key } => {
            tx.cached_execute(sql::SET_RECORDING_KEY, &[&before.id, object_key])
                .await?;
        }
        CallEvent::InitiationFailed { to, reason } => {
            let to = to.as_deref().map(|raw| normalized(raw, settings));
            let status = before.status.merged(CallStatus::Failed);
            let updated = tx
                .cached_query_one(
                    sql::SET_INITIATION_FAILED,
                    &[&before.id, &status.as_str(), reason, &to, &call.event_at],
                )
                .await?;
            // The call never started: a batch call's held credit is released.
            holds::settle(
                tx,
                before.tenant,
                &call.conversation_id,
                &holds::CallKeys {
                    phone_number: to.as_deref().filter(|_| !before.placed_singly),
                    ..holds::CallKeys::default()
                },
            )
            .await?;
            before.roll_up(tx, &updated).await?;
        }
        CallEvent::Analyzed(analysis) => {
            let scores = LeadScores::from_analysis(analysis, settings.lead_tags());
            // Older than the analysis the call keeps: the call and its lead keep theirs.
            if !before.store_analysis(tx, call, &scores, analysis).await? {
                return Ok(before.id);
            }
            let updated = tx
                .cached_query_one(
                    sql::SET_ANALYZED,
                    &[
                        &before.id,
                        &analysis.call_successful,
                        &analysis.transcript_summary,
                    ],
                )
                .await?;
            let score = CallScore::of(&scores);
            if let (Some(lead), false) = (before.lead_id, score.is_none()) {
                let started_at: Option<DateTime<Utc>> = updated.try_get("started_at")?;
                let contact_at = started_at.unwrap_or(call.event_at);
                leads::apply_scores(tx, lead, score, contact_at).await?;
            }
            before.roll_up(tx, &updated).await?;
        }
    }
    Ok(before.id)
}

/// Points every call of `from` at the lead `to` (two leads merged into one).
pub async fn move_to_lead(
    tx: &impl GenericClient,
    tenant: TenantId,
    from: Uuid,
    to: Uuid,
) -> AppResult<u64> {
    Ok(tx
        .cached_execute(sql::MOVE_TO_LEAD, &[&to, &from, tenant.as_uuid()])
        .await?)
}

/// The call row as it was before this event changed it; a call not stored yet is in progress,
/// counts nowhere, and gets its id here.
struct Before {
    id: Uuid,
    tenant: TenantId,
    /// The agent the row names, which the rollups are keyed by (as V0012 recomputes them),
    /// whatever agent a later event of the conversation names.
    agent: Uuid,
    status: CallStatus,
    lead_id: Option<Uuid>,
    figures: Figures,
    stored: bool,
    /// The analysis the call keeps, when it has one.
    analysis: Option<KeptAnalysis>,
    /// Placed by us one at a time (`outbound_call`), not by a batch: its number must not
    /// settle a batch's hold for the same number.
    placed_singly: bool,
}

/// When a call's stored analysis was made, and what it gives the lead.
#[derive(Debug, Clone, Copy)]
struct KeptAnalysis {
    analyzed_at: DateTime<Utc>,
    score: CallScore,
}

impl Before {
    fn from_row(row: &tokio_postgres::Row) -> AppResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant: TenantId::from_trusted(row.try_get("user_id")?),
            agent: row.try_get("agent_id")?,
            status: CallStatus::parse(row.try_get("status")?),
            lead_id: row.try_get("lead_id")?,
            figures: Figures::from_row(row)?,
            stored: true,
            analysis: row
                .try_get::<_, Option<DateTime<Utc>>>("analyzed_at")?
                .map(|analyzed_at| {
                    Ok::<_, AppError>(KeptAnalysis {
                        analyzed_at,
                        score: CallScore {
                            total: row.try_get("total_score")?,
                            tag: row
                                .try_get::<_, Option<&str>>("lead_status_tag")?
                                .and_then(LeadTag::parse),
                        },
                    })
                })
                .transpose()?,
            placed_singly: row.try_get("placed_singly")?,
        })
    }

    fn unstored(agent: &AgentOwner) -> Self {
        Self {
            id: Uuid::new_v4(),
            tenant: agent.tenant,
            agent: agent.agent_id,
            status: CallStatus::InProgress,
            lead_id: None,
            figures: Figures::NONE,
            stored: false,
            analysis: None,
            placed_singly: false,
        }
    }

    /// Stores the call's analysis (with the lead rollup it moves) unless the call keeps a newer
    /// one; whether it stored it.
    async fn store_analysis(
        &self,
        tx: &impl GenericClient,
        call: &CallRef,
        scores: &LeadScores,
        analysis: &Analysis,
    ) -> AppResult<bool> {
        analytics::store(
            tx,
            call.agent.tenant,
            self.agent,
            self.id,
            scores,
            analysis,
            call.event_at,
        )
        .await
    }

    /// Moves the daily rollup from this row to `updated` (the event's RETURNING row of
    /// `figure_columns!()`).
    async fn roll_up(
        &self,
        tx: &impl GenericClient,
        updated: &tokio_postgres::Row,
    ) -> AppResult<()> {
        let after = Figures::from_row(updated)?;
        rollup::apply(tx, self.tenant, self.agent, &self.figures, &after).await
    }
}

/// Locks the tenant's row, records `delivery` when there is one, then locks the call's row
/// when it is stored. Every event of a tenant takes its locks in one order (user, call, lead),
/// so concurrent events of one tenant queue up instead of deadlocking, and a call's row is only
/// ever written under its tenant's lock. Also whether `delivery` is new (false when it was
/// recorded before; true when there is none).
async fn lock(
    tx: &impl GenericClient,
    call: &CallRef,
    event: &CallEvent,
    delivery: Option<&Delivery<'_>>,
) -> AppResult<(bool, Before)> {
    let tenant = call.agent.tenant;
    let lock_tenant = if delivery.is_some() {
        sql::LOCK_TENANT_ONCE
    } else {
        sql::LOCK_TENANT
    };
    // The call is read by a statement of its own, pipelined after the tenant's lock: a
    // statement sees the rows committed when it starts, so one that waited for the lock would
    // miss the row its previous holder stored. Both prepared first, so they go out in order.
    tx.prepare_all(&[lock_tenant, sql::LOCK_CALL]).await?;
    let fresh = async {
        Ok::<_, AppError>(match delivery {
            Some(delivery) => tx
                .cached_query_one(
                    lock_tenant,
                    &[
                        tenant.as_uuid(),
                        &delivery.event_key,
                        &delivery.source,
                        &event.kind(),
                        &call.conversation_id,
                    ],
                )
                .await?
                .try_get("fresh")?,
            None => {
                tx.cached_query_one(lock_tenant, &[tenant.as_uuid()])
                    .await?;
                true
            }
        })
    };
    let stored = async {
        Ok(tx
            .cached_query_opt(sql::LOCK_CALL, &[&call.conversation_id])
            .await?)
    };
    let (fresh, stored) = try_join(fresh, stored).await?;
    let before = match stored {
        Some(row) => Before::from_row(&row)?,
        None => Before::unstored(&call.agent),
    };
    Ok((fresh, before))
}

/// Stores a call in progress (the tenant is locked), for an event that changes a stored row.
async fn insert(tx: &impl GenericClient, call: &CallRef) -> AppResult<Before> {
    let row = tx
        .cached_query_one(
            sql::INSERT_IN_PROGRESS,
            &[
                call.agent.tenant.as_uuid(),
                &call.agent.agent_id,
                &call.conversation_id,
                &call.kind(),
            ],
        )
        .await?;
    Before::from_row(&row)
}

/// A number as the tenant's region reads it; kept as written when it does not parse.
fn normalized(raw: &str, settings: &Settings) -> String {
    phone::normalize(raw, settings.phone_region()).unwrap_or_else(|| raw.trim().to_owned())
}

struct ContactMatch {
    id: Uuid,
    name: String,
    email: Option<String>,
    company: Option<String>,
}

/// What a transcription's other party is known as: the number as the tenant's region reads
/// it, the tenant's contact with that number, and what the conversation says about them.
struct Found {
    other_party: Option<String>,
    contact: Option<ContactMatch>,
    person: Person,
}

/// Looks the other party up; pipelined with the call's lock.
async fn find(
    tx: &impl GenericClient,
    settings: &Settings,
    tenant: TenantId,
    event: &CallEvent,
) -> AppResult<Found> {
    let (other_party, person) = match event {
        CallEvent::Transcribed(t) => {
            let person = Person::of(t);
            let number = match &t.other_party {
                Some(raw) => Some(normalized(raw, settings)),
                // A chat has no line: the number it collected, when it is one.
                None => person
                    .phone
                    .as_deref()
                    .and_then(|raw| phone::normalize(raw, settings.phone_region())),
            };
            (number, person)
        }
        _ => (None, Person::default()),
    };
    let Some(number) = &other_party else {
        return Ok(Found {
            other_party,
            contact: None,
            person,
        });
    };
    let row = tx
        .cached_query_opt(sql::CONTACT_BY_PHONE, &[tenant.as_uuid(), number])
        .await?;
    let contact = row
        .map(|row| {
            Ok::<_, AppError>(ContactMatch {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                company: row.try_get("company")?,
            })
        })
        .transpose()?;
    Ok(Found {
        other_party,
        contact,
        person,
    })
}

pub mod sql {
    use crate::calls::rollup::figure_columns;

    crate::db::statements! {
        pub const SET_PLACED = concat!(
            "UPDATE calls SET direction = COALESCE(direction, 'outbound'),
                phone_number = COALESCE(phone_number, $2), contact_id = COALESCE(contact_id, $3),
                started_at = COALESCE(started_at, now()), metadata = $4 || metadata,
                updated_at = now()
            WHERE id = $1 RETURNING ", figure_columns!()
        );
        pub const SET_RECORDING_KEY =
            "UPDATE calls SET recording_key = $2, updated_at = now() WHERE id = $1";
        pub const SET_INITIATION_FAILED = concat!(
            "UPDATE calls SET status = $2,
                failure_reason = CASE WHEN $2 = 'failed' THEN $3 ELSE failure_reason END,
                phone_number = COALESCE(phone_number, $4),
                direction = COALESCE(direction, 'outbound'),
                completed_at = COALESCE(completed_at, $5), updated_at = now()
            WHERE id = $1 RETURNING ", figure_columns!()
        );
        pub const SET_ANALYZED = concat!(
            "UPDATE calls SET call_successful = COALESCE($2, call_successful),
                summary = COALESCE($3, summary), updated_at = now()
            WHERE id = $1 RETURNING ", figure_columns!()
        );
        pub const MOVE_TO_LEAD = "UPDATE calls SET lead_id = $1 WHERE lead_id = $2 AND user_id = $3";
        /// The tenant's lock; the update marks its dashboards stale.
        pub const LOCK_TENANT = "UPDATE users SET stats_version = stats_version + 1 WHERE id = $1
            RETURNING id";
        /// `LOCK_TENANT` that also writes the delivery's dedup row, under the tenant's lock
        /// (read from the update): `fresh` is false when the delivery was recorded before.
        pub const LOCK_TENANT_ONCE = "WITH tenant AS (
                UPDATE users SET stats_version = stats_version + 1 WHERE id = $1 RETURNING id),
            recorded AS (
                INSERT INTO processed_events (event_key, source, event_type, conversation_id, outcome)
                SELECT $2, $3, $4, $5, 'applied' FROM tenant
                ON CONFLICT (event_key) DO NOTHING RETURNING 1)
            SELECT EXISTS (SELECT FROM recorded) AS fresh FROM tenant";
        /// The call's row, locked, with the analysis it keeps. `Placed` writes the line into
        /// the metadata: only a call we placed one at a time has it.
        pub const LOCK_CALL = concat!(
            "SELECT call.*, kept.analyzed_at, kept.total_score, kept.lead_status_tag
            FROM (SELECT id, user_id, agent_id, lead_id, ", figure_columns!(), ",
                    metadata ? 'agent_phone_number_id' AS placed_singly
                FROM calls WHERE elevenlabs_conversation_id = $1 FOR UPDATE) AS call
            LEFT JOIN lead_analytics AS kept ON kept.call_id = call.id"
        );
        pub const INSERT_IN_PROGRESS = concat!(
            "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, status)
            VALUES ($1, $2, $3, $4, 'in_progress') RETURNING id, user_id, agent_id, lead_id, ",
            figure_columns!(), ", NULL::timestamptz AS analyzed_at, NULL::integer AS total_score,
                NULL::text AS lead_status_tag, false AS placed_singly"
        );
        /// A call's row written whole by its first event, a transcription: `SET_TRANSCRIBED`'s
        /// values with nothing stored to merge them into.
        pub const INSERT_TRANSCRIBED = concat!("INSERT INTO calls (id, type, direction, status,
                phone_number, agent_number, contact_id, lead_id, started_at, duration_seconds,
                credits_charged, cost, call_successful, summary, termination_reason, metadata,
                completed_at, user_id, agent_id, elevenlabs_conversation_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, GREATEST($10, 0), $11, $12, $13, $14, $15,
                $16, CASE WHEN $4 <> 'in_progress' THEN COALESCE($17, now()) END, $18, $19, $20)
            RETURNING ", figure_columns!()
        );
        pub const SET_TRANSCRIBED = concat!("UPDATE calls SET
                type = $2, direction = COALESCE($3, direction), status = $4,
                phone_number = COALESCE($5, phone_number), agent_number = COALESCE($6, agent_number),
                contact_id = COALESCE($7, contact_id), lead_id = COALESCE($8, lead_id),
                started_at = COALESCE($9, started_at), duration_seconds = GREATEST(duration_seconds, $10),
                credits_charged = credits_charged + $11, cost = COALESCE($12, cost),
                call_successful = COALESCE($13, call_successful), summary = COALESCE($14, summary),
                termination_reason = COALESCE($15, termination_reason), metadata = metadata || $16,
                completed_at = CASE WHEN $4 <> 'in_progress' THEN COALESCE(completed_at, $17, now()) ELSE completed_at END,
                updated_at = now()
            WHERE id = $1 RETURNING ", figure_columns!()
        );
        pub const CONTACT_BY_PHONE = "SELECT id, name, email, company FROM contacts
            WHERE user_id = $1 AND phone_number = $2 AND deleted_at IS NULL";
        pub const UPSERT_TRANSCRIPT = "INSERT INTO transcripts (call_id, content, speaker_segments) VALUES ($1, $2, $3)
            ON CONFLICT (call_id) DO UPDATE SET content = EXCLUDED.content,
                speaker_segments = EXCLUDED.speaker_segments, updated_at = now()
            WHERE jsonb_array_length(EXCLUDED.speaker_segments) >= jsonb_array_length(transcripts.speaker_segments)";
    }
}
