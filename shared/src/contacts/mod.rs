//! Contacts: the people a tenant calls, one per normalized phone number. Every query is scoped
//! by the tenant; deleting is soft, so calls keep pointing at their contact.

pub mod import;
pub mod lookup;
pub mod upload;

use crate::db::filter::{Filter, Keyset, Search, Searched, Total};
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    ids::ContactId,
    phone,
    tenant::TenantId,
    text, AppState,
};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_COMPANY_CHARS: usize = 200;
pub const MAX_NOTES_CHARS: usize = 2000;

/// The design's Contact model.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// E.164.
    pub phone_number: String,
    // design.md's optional fields: absent when empty, as `email?: string` reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<&Row> for Contact {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            phone_number: row.try_get("phone_number")?,
            email: row.try_get("email")?,
            company: row.try_get("company")?,
            notes: row.try_get("notes")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// `POST /api/contacts`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewContact {
    pub name: String,
    /// Any common spelling; stored as E.164 (numbers without a country code use the platform's
    /// default region).
    pub phone_number: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// `PUT /api/contacts/{id}`: absent fields stay; an empty string clears email, company or notes.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ContactUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A contact's fields after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFields {
    pub name: String,
    pub phone_number: String,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
}

impl NewContact {
    pub fn validate(&self, region: phonenumber::country::Id) -> AppResult<ContactFields> {
        Ok(ContactFields {
            name: text::line("name", &self.name, MAX_NAME_CHARS)?,
            phone_number: valid_phone(&self.phone_number, region)?,
            email: text::optional_email("email", self.email.as_deref())?,
            company: text::optional_line("company", self.company.as_deref(), MAX_COMPANY_CHARS)?,
            notes: text::optional_block("notes", self.notes.as_deref(), MAX_NOTES_CHARS)?,
        })
    }
}

fn valid_phone(raw: &str, region: phonenumber::country::Id) -> AppResult<String> {
    phone::normalize(raw, region).ok_or_else(|| {
        AppError::validation(
            "phone_number",
            "is not a valid phone number (use the international form, e.g. +14155552671)",
        )
    })
}

/// Stores a new contact; 409 when the tenant already has one with that number.
pub async fn create(
    state: &AppState,
    tenant: TenantId,
    request: &NewContact,
) -> AppResult<Contact> {
    let fields = request.validate(state.settings().await?.phone_region())?;
    let db = state.db().get().await?;
    let row = db
        .cached_query_opt(
            sql::INSERT,
            &[
                tenant.as_uuid(),
                &fields.name,
                &fields.phone_number,
                &fields.email,
                &fields.company,
                &fields.notes,
            ],
        )
        .await?;
    match row {
        Some(row) => Contact::try_from(&row),
        None => Err(duplicate(&db, tenant, &fields.phone_number).await),
    }
}

async fn duplicate(db: &impl GenericClient, tenant: TenantId, phone_number: &str) -> AppError {
    let existing = db
        .cached_query_opt(sql::ID_BY_PHONE, &[tenant.as_uuid(), &phone_number])
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<_, Uuid>(0).ok());
    AppError::conflict(
        "duplicate_contact",
        "a contact with this phone number already exists",
    )
    .with_details(serde_json::json!({
        "field": "phone_number",
        "phone_number": phone_number,
        "existing_contact_id": existing,
    }))
}

/// One of the tenant's contacts; 404 for anything else, including malformed ids.
pub async fn find(db: &impl GenericClient, tenant: TenantId, id: ContactId) -> AppResult<Contact> {
    db.cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .map(|row| Contact::try_from(&row))
        .transpose()?
        .ok_or_else(|| AppError::not_found("contact"))
}

/// The tenant's contacts among `ids` (deduplicated); 404 when any is not one of them.
pub async fn find_all(
    db: &impl GenericClient,
    tenant: TenantId,
    ids: &[ContactId],
) -> AppResult<Vec<Contact>> {
    let mut wanted = ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let rows = db
        .cached_query(sql::SOME_OF_TENANT, &[&wanted, tenant.as_uuid()])
        .await?;
    if rows.len() != wanted.len() {
        return Err(AppError::not_found("contact"));
    }
    rows.iter().map(Contact::try_from).collect()
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactFilter {
    /// Part of the name, phone number, email or company; case-insensitive.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
}

impl ContactFilter {
    /// The tenant's live contacts this filter matches.
    fn to_sql(&self, tenant: TenantId) -> Filter {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(*tenant.as_uuid())])
            .and("deleted_at IS NULL", vec![])
            .and_containing_in(tenant, &SEARCHED, self.search.as_ref());
        filter
    }
}

/// The columns a search of contacts looks in, as V0024's trigram index joins them; the call
/// list's search looks in the same ones, under its alias (`calls::read::SEARCHED`).
pub const SEARCHED_COLUMNS: [&str; 4] = ["name", "phone_number", "email", "company"];

const SEARCHED: Searched = Searched {
    columns: &SEARCHED_COLUMNS,
    tenant: "user_id",
    joined: None,
    sampled_by: Some("id"),
};

/// Newest first: the order of the tenant's live contacts in their index (V0019).
const NEWEST: Keyset = Keyset::CREATED;

/// A page of the tenant's contacts, newest first, and the total matching the filter.
pub async fn list(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &ContactFilter,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> AppResult<(Vec<Contact>, Total)> {
    let mut matching = filter.to_sql(tenant);
    matching
        .fit_search_to_rows(db, sql::LIST_FROM, &NEWEST)
        .await?;
    let (rows, total) = matching
        .page_with_total(db, sql::LIST_FROM, sql::LIST_SELECT, &NEWEST, after, limit)
        .await?;
    let contacts = rows
        .iter()
        .map(Contact::try_from)
        .collect::<AppResult<_>>()?;
    Ok((contacts, total))
}

/// Applies the given fields; 409 when the new number belongs to another of the tenant's
/// contacts.
pub async fn update(
    state: &AppState,
    tenant: TenantId,
    id: ContactId,
    update: &ContactUpdate,
) -> AppResult<Contact> {
    let region = state.settings().await?.phone_region();
    let db = state.db().get().await?;
    let current = find(&db, tenant, id).await?;
    // Only what is sent is checked: a stored value stays as it is (checked by the rules of
    // its day), so a change of one field is never refused for another.
    let fields = ContactFields {
        name: match &update.name {
            Some(raw) => text::line("name", raw, MAX_NAME_CHARS)?,
            None => current.name,
        },
        phone_number: match &update.phone_number {
            Some(raw) => valid_phone(raw, region)?,
            None => current.phone_number,
        },
        email: match &update.email {
            Some(raw) => text::optional_email("email", Some(raw))?,
            None => current.email,
        },
        company: match &update.company {
            Some(raw) => text::optional_line("company", Some(raw), MAX_COMPANY_CHARS)?,
            None => current.company,
        },
        notes: match &update.notes {
            Some(raw) => text::optional_block("notes", Some(raw), MAX_NOTES_CHARS)?,
            None => current.notes,
        },
    };
    let result = db
        .cached_query_opt(
            sql::UPDATE,
            &[
                &current.id,
                tenant.as_uuid(),
                &fields.name,
                &fields.phone_number,
                &fields.email,
                &fields.company,
                &fields.notes,
            ],
        )
        .await;
    match result {
        Ok(Some(row)) => Contact::try_from(&row),
        Ok(None) => Err(AppError::not_found("contact")),
        Err(err) if is_unique_violation(&err) => {
            Err(duplicate(&db, tenant, &fields.phone_number).await)
        }
        Err(err) => Err(err.into()),
    }
}

/// Marks the contact deleted; its calls and leads keep their link.
pub async fn delete(state: &AppState, tenant: TenantId, id: ContactId) -> AppResult<()> {
    let db = state.db().get().await?;
    let contact = find(&db, tenant, id).await?;
    db.cached_execute(sql::SOFT_DELETE, &[&contact.id, tenant.as_uuid()])
        .await?;
    Ok(())
}

fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

pub mod sql {
    use super::{ContactFilter, TenantId, Uuid, NEWEST};
    use crate::db::filter::Filter;

    /// The columns `Contact::try_from` reads, named: a statement answering `*` would fail on
    /// connections that prepared it before a deploy added a column.
    macro_rules! contact_columns {
        () => {
            "id, user_id, name, phone_number, email, company, notes, deleted_at, created_at,
            updated_at"
        };
    }

    pub const LIST_FROM: &str = "contacts";
    pub const LIST_SELECT: &str = concat!("SELECT ", contact_columns!(), " FROM contacts");

    crate::db::statements! {
        pub const INSERT = concat!("INSERT INTO contacts (user_id, name, phone_number, email, company, notes)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (user_id, phone_number) WHERE deleted_at IS NULL DO NOTHING
            RETURNING ", contact_columns!());
        pub const ID_BY_PHONE = "SELECT id FROM contacts WHERE user_id = $1 AND phone_number = $2 AND deleted_at IS NULL";
        pub const ONE_OF_TENANT = concat!("SELECT ", contact_columns!(),
            " FROM contacts WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL");
        pub const SOME_OF_TENANT = concat!("SELECT ", contact_columns!(),
            " FROM contacts WHERE id = ANY($1) AND user_id = $2 AND deleted_at IS NULL
            ORDER BY created_at, id");
        pub const UPDATE = concat!("UPDATE contacts SET name = $3, phone_number = $4, email = $5, company = $6,
            notes = $7, updated_at = now()
            WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
            RETURNING ", contact_columns!());
        pub const SOFT_DELETE = "UPDATE contacts SET deleted_at = now(), updated_at = now()
            WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL";
        fullest {
            LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
            LIST_PAGE = || every_filter().page_statement(LIST_SELECT, &NEWEST, true),
        }
    }

    fn every_filter() -> Filter {
        ContactFilter {
            search: Some(crate::db::filter::Search::parse("a").expect("a search")),
        }
        .to_sql(TenantId::from_trusted(Uuid::nil()))
    }
}
