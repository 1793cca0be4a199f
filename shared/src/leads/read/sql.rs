//! The lead lists' and report's statements, and the fullest variant of each built from a
//! filter, which `checked_sql` prepares against the schema.

use uuid::Uuid;

use chrono::{DateTime, Utc};

use super::{LeadFilter, NEWEST_CONTACT, NEWEST_INTERACTION};
use crate::{
    db::filter::Filter,
    leads::{analytics::analytics_columns, LeadStatus},
    tenant::TenantId,
};

/// The columns `Lead::try_from` reads, named: a statement answering `l.*` would fail on
/// connections that prepared it before a deploy added a column.
macro_rules! lead_columns {
    () => {
        "l.id, l.user_id, l.phone_number, l.name, l.email, l.company, l.contact_id, l.agent_id,
        l.total_score, l.lead_status_tag, l.interaction_count, l.last_contact_at, l.created_at,
        l.updated_at, l.elevenlabs_user_id, a.name AS agent_name,
        coalesce(l.last_contact_at, l.created_at) AS sort_at"
    };
}
macro_rules! lead_from {
    () => {
        "leads l LEFT JOIN agents a ON a.id = l.agent_id"
    };
}

pub const TIMELINE_FROM: &str = "calls c";
pub const TIMELINE_SELECT: &str =
    "SELECT c.id, c.type, c.status, c.direction, c.agent_id, c.started_at, c.created_at,
            c.duration_seconds, c.summary, la.total_score, la.lead_status_tag, la.cta_interactions,
            t.speaker_segments AS messages
        FROM calls c LEFT JOIN lead_analytics la ON la.call_id = c.id
        LEFT JOIN transcripts t ON t.call_id = c.id AND c.type = 'chat'";

pub(super) fn top_scored(
    tenant: TenantId,
    contacted: std::ops::Range<DateTime<Utc>>,
    agents: Option<Vec<Uuid>>,
) -> Filter {
    let mut filter = Filter::default();
    filter
        .and("l.user_id = $", vec![Box::new(*tenant.as_uuid())])
        .and("l.total_score IS NOT NULL", vec![])
        .and("l.last_contact_at >= $", vec![Box::new(contacted.start)])
        .and("l.last_contact_at < $", vec![Box::new(contacted.end)])
        .and_some("l.agent_id = ANY($)", agents);
    filter
}

/// The leads `filter` (from [`top_scored`]: the tenant `$1` first) matches, best score
/// first, then the latest contact; at most the parameter after the filter's.
///
/// A period's leads are many (112,534 of the largest bench tenant's in 30 days), and
/// sorting them all took 227 ms; read down the score index (V0043) instead, a period with
/// few leads would pass every other lead of the tenant first. So the statement walks down
/// the tenant's distinct scores, one index descent each (at most 101: scores are 0 to
/// 100), counting each score's leads of the period up to the limit, and stops at the score
/// where those above it hold the limit; then reads each walked score's newest leads of the
/// period from the index, and reads the rows of the best of those alone.
pub(super) fn best_scored_statement(filter: &Filter) -> String {
    let (matching, limit) = (filter.where_clause(), filter.next_placeholder(0));
    debug_assert!(matching.starts_with("l.user_id = $1 "));
    format!(
        "WITH RECURSIVE scores (score, above) AS (
            (SELECT l.total_score, 0::bigint FROM leads l
             WHERE l.user_id = $1 AND l.total_score IS NOT NULL
             ORDER BY l.total_score DESC LIMIT 1)
            UNION ALL
            SELECT lower.total_score, s.above + (SELECT count(*) FROM (SELECT FROM leads l
                WHERE {matching} AND l.total_score = s.score LIMIT {limit}) of_score)
            FROM scores s CROSS JOIN LATERAL (SELECT l.total_score FROM leads l
                WHERE l.user_id = $1 AND l.total_score < s.score
                ORDER BY l.total_score DESC LIMIT 1) lower
            WHERE s.above < {limit})
        {LIST_SELECT} WHERE l.id IN (SELECT best.id FROM scores s CROSS JOIN LATERAL
            (SELECT l.id, l.last_contact_at FROM leads l
             WHERE {matching} AND l.total_score = s.score
             ORDER BY l.last_contact_at DESC, l.id LIMIT {limit}) best
            ORDER BY s.score DESC, best.last_contact_at DESC, best.id LIMIT {limit})
        ORDER BY l.total_score DESC, l.last_contact_at DESC, l.id LIMIT {limit}"
    )
}

pub(super) fn timeline_of(lead: Uuid, tenant: TenantId) -> Filter {
    let mut filter = Filter::default();
    filter
        .and("c.lead_id = $", vec![Box::new(lead)])
        .and("c.user_id = $", vec![Box::new(*tenant.as_uuid())]);
    filter
}

/// The rows the lead list and an export count: the leads alone. The agent's outer join
/// never changes the count, but it kept Postgres off an index-only scan: the generic plan
/// of a million-call tenant's count read all 291,546 of its index entries into a bitmap
/// (~28 ms) where the index-only scan stops after 10,001 (~2 ms).
pub const LIST_FROM: &str = "leads l";
pub const LIST_SELECT: &str = concat!("SELECT ", lead_columns!(), " FROM ", lead_from!());

/// The newest analysis of the lead `$lead` of the tenant `$tenant` (SQL expressions), from
/// the analyses' own lead index (V0018): its newest analysis time, then the analyses of
/// that time, the newest call's first (the plan cached for these reads two index entries,
/// where ordering by the call's time as well joined every call of the lead). The newest
/// time is looked up by lead alone: with the tenant there too, the generic plan of a
/// 100,000-call tenant intersected the lead's index entries with all of the tenant's
/// analyses (12 ms a lead); the row itself is still the tenant's only.
macro_rules! latest_analysis_of {
    ($lead:literal, $tenant:literal) => {
        concat!(
            "SELECT ",
            analytics_columns!(),
            " FROM lead_analytics la JOIN calls c ON c.id = la.call_id
            WHERE la.lead_id = ",
            $lead,
            " AND la.user_id = ",
            $tenant,
            "
              AND la.analyzed_at = (SELECT newest.analyzed_at FROM lead_analytics newest
                  WHERE newest.lead_id = ",
            $lead,
            " ORDER BY newest.analyzed_at DESC LIMIT 1)
            ORDER BY c.created_at DESC, la.id DESC LIMIT 1"
        )
    };
}

/// The lead list's `page` (a page statement of `LIST_SELECT`), each lead with its newest
/// analysis in the row's last `ANALYTICS_COLUMNS` (nulls where it has none): one
/// statement, one round trip. The page is cut first, so that the analyses are looked up
/// for its rows alone. The lead's columns come first: `Lead::try_from` reads by name,
/// which finds the first `id`.
pub(super) fn around_list_page(page: &str) -> String {
    format!(
        "SELECT listed.*, latest.* FROM ({page}) listed
        LEFT JOIN LATERAL ({}) latest ON true
        ORDER BY listed.sort_at DESC, listed.id DESC",
        latest_analysis_of!("listed.id", "listed.user_id"),
    )
}

crate::db::statements! {
    pub const ONE_OF_TENANT = concat!(
        "SELECT ", lead_columns!(), " FROM ", lead_from!(), " WHERE l.id = $1 AND l.user_id = $2"
    );
    /// A lead's newest analysis (see `latest_analysis_of`).
    pub const LATEST_ANALYTICS = latest_analysis_of!("$1", "$2");
    pub const POSSIBLE_DUPLICATES = concat!("SELECT ", lead_columns!(), " FROM ", lead_from!(), "
        WHERE l.user_id = $1 AND l.id <> $2
          AND ((l.phone_number IS NOT NULL AND l.phone_number = $3)
               OR (l.email IS NOT NULL AND lower(l.email) = lower($4)))
        ORDER BY l.created_at LIMIT 20");
    fullest {
        LIST_COUNT = || every_filter().count_statement(LIST_FROM),
        LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
        LIST_PAGE = || around_list_page(&every_filter().page_statement(LIST_SELECT, &NEWEST_CONTACT, true)),
        TOP_SCORED = || best_scored_statement(
            &top_scored(TenantId::from_trusted(Uuid::nil()), DateTime::UNIX_EPOCH..DateTime::UNIX_EPOCH, Some(vec![]))),
        TIMELINE_TOTAL = || timeline_of(Uuid::nil(), TenantId::from_trusted(Uuid::nil())).total_statement(TIMELINE_FROM),
        TIMELINE_PAGE = || timeline_of(Uuid::nil(), TenantId::from_trusted(Uuid::nil()))
            .page_statement(TIMELINE_SELECT, &NEWEST_INTERACTION, true),
    }
}

fn every_filter() -> Filter {
    LeadFilter {
        lead_status: Some(LeadStatus::Hot),
        min_score: Some(50),
        agent_id: Some(Uuid::nil()),
        search: Some(crate::db::filter::Search::parse("a").expect("a search")),
    }
    .to_sql(TenantId::from_trusted(Uuid::nil()))
    .expect("the fullest filter is valid")
}
