//! `GET /analytics/reports`: a period report (the overview's KPIs, the per-agent table and the
//! top-scored leads), as JSON or as a CSV to download.

use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{analytics, overview, AgentBreakdown, Agents, Kpi, Overview, Range, Scope};
use crate::{
    error::{AppError, AppResult},
    export::{cell, write_record},
    leads::read::{self as leads, Lead},
    tenant::TenantId,
};

/// Leads a report lists.
pub const TOP_LEADS: i64 = 10;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub range: Range,
    /// The KPIs with their change against the previous period of the same length.
    pub kpis: Overview,
    /// One row per agent with activity in the range, with its daily series.
    pub agents: Vec<AgentBreakdown>,
    /// The best-scored leads contacted in the range, best first.
    pub top_leads: Vec<Lead>,
}

pub async fn report(
    db: &impl GenericClient,
    tenant: TenantId,
    range: Range,
    scope: &Scope,
    agents: &Agents,
    credits_left: i64,
) -> AppResult<Report> {
    let kpis = overview(db, tenant, range, scope, agents, credits_left).await?;
    let by_agent = analytics(db, tenant, range, scope, agents).await?.by_agent;
    let top_leads = leads::top_scored(
        db,
        tenant,
        range.instants(),
        scope.agent_ids(agents),
        TOP_LEADS,
    )
    .await?;
    Ok(Report {
        range,
        kpis,
        agents: by_agent,
        top_leads,
    })
}

impl Report {
    /// Three tables one after the other, each with its header: the KPIs, the agents, the top
    /// leads.
    pub fn csv(&self) -> AppResult<Vec<u8>> {
        let mut out = Vec::new();
        let kpis = &self.kpis;
        line(
            &mut out,
            strings(&["kpi", "value", "previous", "change_percent"]),
        )?;
        let rows: [(&str, &Kpi); 7] = [
            ("calls", &kpis.calls),
            ("chats", &kpis.chats),
            ("minutes", &kpis.minutes),
            ("credits_used", &kpis.credits_used),
            ("average_duration_seconds", &kpis.average_duration_seconds),
            ("success_rate", &kpis.success_rate),
            ("average_score", &kpis.average_score),
        ];
        for (name, kpi) in rows {
            line(
                &mut out,
                vec![
                    name.to_owned(),
                    kpi.value.to_string(),
                    kpi.previous.to_string(),
                    cell(kpi.change_percent),
                ],
            )?;
        }
        out.push(b'\n');
        line(
            &mut out,
            strings(&[
                "agent_id",
                "agent",
                "type",
                "calls",
                "chats",
                "minutes",
                "credits_used",
                "success_rate",
                "average_score",
                "hot",
                "warm",
                "cold",
            ]),
        )?;
        for agent in &self.agents {
            let t = &agent.totals;
            line(
                &mut out,
                vec![
                    agent.agent_id.to_string(),
                    agent.agent_name.clone(),
                    agent.kind.as_str().to_owned(),
                    t.calls.to_string(),
                    t.chats.to_string(),
                    agent.minutes.to_string(),
                    t.credits_used.to_string(),
                    agent.success_rate.to_string(),
                    agent.average_score.to_string(),
                    t.hot.to_string(),
                    t.warm.to_string(),
                    t.cold.to_string(),
                ],
            )?;
        }
        out.push(b'\n');
        line(
            &mut out,
            strings(&[
                "lead_id",
                "name",
                "phone_number",
                "email",
                "agent",
                "total_score",
                "lead_status_tag",
                "last_contact_at",
            ]),
        )?;
        for lead in &self.top_leads {
            line(
                &mut out,
                vec![
                    lead.id.to_string(),
                    cell(lead.name.as_ref()),
                    cell(lead.phone_number.as_ref()),
                    cell(lead.email.as_ref()),
                    cell(lead.agent_name.as_ref()),
                    cell(lead.total_score),
                    cell(lead.lead_status_tag.as_ref()),
                    cell(lead.last_contact_at.map(|t| t.to_rfc3339())),
                ],
            )?;
        }
        Ok(out)
    }
}

fn line(out: &mut Vec<u8>, cells: Vec<String>) -> AppResult<()> {
    let mut writer = csv::Writer::from_writer(out);
    write_record(&mut writer, cells)?;
    writer.flush().map_err(AppError::internal)
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}
