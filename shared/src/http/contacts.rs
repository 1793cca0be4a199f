//! The contacts group: `/api/contacts` (documented) and the design's `/contacts` aliases.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::get,
    Json,
};
use chrono::{DateTime, Utc};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{AppJson, AppQuery, ListResponse, PageQuery};
use crate::{
    auth::AuthUser,
    contacts::{self, Contact, ContactFilter, ContactUpdate, NewContact},
    error::{AppResult, ErrorBody},
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact, delete_contact))
        .route("/contacts", get(list_contacts).post(create_contact))
        .route(
            "/contacts/{id}",
            get(get_contact).put(update_contact).delete(delete_contact),
        )
}

#[utoipa::path(get, path = "/api/contacts", tag = "contacts",
    description = "The tenant's contacts, newest first. Alias: GET /contacts.",
    params(ContactFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Contact>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_contacts(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<ContactFilter>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<Contact>>> {
    let limit = page.limit()?;
    let after = page.cursor::<(DateTime<Utc>, Uuid)>()?;
    let (contacts, total) = contacts::list(&state, auth.tenant, &filter, limit, after).await?;
    Ok(Json(ListResponse::page(contacts, total, limit, |c| {
        (c.created_at, c.id)
    })))
}

#[utoipa::path(post, path = "/api/contacts", tag = "contacts", request_body = NewContact,
    description = "Adds one contact; the phone number is stored as E.164. Alias: POST /contacts.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 201, body = Contact), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(request): AppJson<NewContact>,
) -> AppResult<(StatusCode, Json<Contact>)> {
    let contact = contacts::create(&state, auth.tenant, &request).await?;
    Ok((StatusCode::CREATED, Json(contact)))
}

#[utoipa::path(get, path = "/api/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "contact id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Contact), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> AppResult<Json<Contact>> {
    let db = state.db().get().await?;
    Ok(Json(contacts::find(&db, auth.tenant, &id).await?))
}

#[utoipa::path(put, path = "/api/contacts/{id}", tag = "contacts", request_body = ContactUpdate,
    description = "Changes the given fields; an empty string clears email, company or notes. Alias: PUT /contacts/{id}.",
    params(("id" = Uuid, Path, description = "contact id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Contact), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    AppJson(update): AppJson<ContactUpdate>,
) -> AppResult<Json<Contact>> {
    Ok(Json(
        contacts::update(&state, auth.tenant, &id, &update).await?,
    ))
}

#[utoipa::path(delete, path = "/api/contacts/{id}", tag = "contacts",
    description = "Deletes the contact; its calls and leads keep their link. Alias: DELETE /contacts/{id}.",
    params(("id" = Uuid, Path, description = "contact id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    contacts::delete(&state, auth.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
