//! Storing an uploaded contact file: what the parser found valid, less the numbers the tenant
//! already has, in one transaction.

use crate::db::statements::Cached;
use serde::Serialize;
use utoipa::ToSchema;

use super::import::{self, DuplicateRow, ImportLimits, InvalidRow};
use crate::{error::AppResult, tenant::TenantId, AppState};

/// The answer to an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadReport {
    /// Non-blank rows below the header.
    pub total_rows: usize,
    pub created: usize,
    /// Rows whose number appeared earlier in the file or is already a contact.
    pub duplicates: Vec<DuplicateRow>,
    pub invalid: Vec<InvalidRow>,
}

pub async fn import(
    state: &AppState,
    tenant: TenantId,
    file_name: &str,
    bytes: &[u8],
) -> AppResult<UploadReport> {
    let limits = ImportLimits::from_settings(&*state.settings().await?);
    let parsed = import::parse(file_name, bytes, &limits)?;
    let mut duplicates = parsed.duplicates;
    let contacts = parsed.contacts;

    let column = |f: fn(&import::ImportedContact) -> Option<String>| -> Vec<Option<String>> {
        contacts.iter().map(f).collect()
    };
    let names = column(|c| Some(c.name.clone()));
    let phones = column(|c| Some(c.phone_number.clone()));
    let emails = column(|c| c.email.clone());
    let companies = column(|c| c.company.clone());
    let notes = column(|c| c.notes.clone());

    let mut db = state.db().get().await?;
    let tx = db.transaction().await?;
    // Rows whose number the tenant already has are skipped by the conflict clause; the ones
    // inserted come back, so the rest are the duplicates (including a concurrent upload's).
    let inserted = tx
        .cached_query(
            sql::INSERT_MANY,
            &[
                tenant.as_uuid(),
                &names,
                &phones,
                &emails,
                &companies,
                &notes,
            ],
        )
        .await?;
    tx.commit().await?;
    let created: std::collections::HashSet<String> = inserted
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for contact in &contacts {
        if !created.contains(&contact.phone_number) {
            duplicates.push(DuplicateRow {
                row: contact.row,
                phone: contact.phone_number.clone(),
            });
        }
    }
    duplicates.sort_by_key(|d| d.row);
    Ok(UploadReport {
        total_rows: parsed.total_rows,
        created: created.len(),
        duplicates,
        invalid: parsed.invalid,
    })
}

pub mod sql {
    crate::db::statements! {
        /// In the numbers' order: a concurrent upload of the same numbers waits on the first it
        /// shares instead of holding one this one waits on (a deadlock).
        pub const INSERT_MANY = "INSERT INTO contacts (user_id, name, phone_number, email, company, notes)
            SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                AS file(name, phone_number, email, company, notes)
            ORDER BY file.phone_number
            ON CONFLICT (user_id, phone_number) WHERE deleted_at IS NULL DO NOTHING
            RETURNING phone_number";
    }
}
