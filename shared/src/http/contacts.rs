//! The contacts group: `/api/contacts` (documented) and the design's `/contacts` aliases,
//! including the spreadsheet upload.

use axum::{
    extract::{
        multipart::{Multipart, MultipartRejection},
        DefaultBodyLimit, State,
    },
    http::{HeaderMap, StatusCode},
    response::Response,
    Json,
};
use chrono::{DateTime, Utc};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use uuid::Uuid;

use super::{conditional, AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    auth::{AuthUser, Caller},
    contacts::{
        self, upload, upload::UploadReport, Contact, ContactFilter, ContactUpdate, NewContact,
    },
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    ids::ContactId,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_contacts, create_contact))
        .routes(routes!(M; get_contact, update_contact, delete_contact))
        // The upload enforces the configured file limit itself while reading the part.
        .routes(routes!(M; upload_contacts).layer(DefaultBodyLimit::disable()))
}

#[utoipa::path(get, path = "/api/contacts", tag = "contacts",
    description = "The tenant's contacts, newest first. Alias: GET /contacts. Sends an ETag; If-None-Match answers 304 while the page is unchanged.",
    params(ContactFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Contact>), (status = 304), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppQuery(filter): AppQuery<ContactFilter>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Response> {
    let (_, (contacts, total)) = caller
        .read(&state, &(filter, page), |db, tenant, (filter, page)| {
            Box::pin(contacts::list(db, tenant, filter, page.limit, page.after))
        })
        .await?;
    conditional::json(
        &headers,
        &ListResponse::page(contacts, total, page.limit, |c| (c.created_at, c.id)),
    )
}

#[utoipa::path(post, path = "/api/contacts", tag = "contacts", request_body = NewContact,
    description = "Adds one contact; the phone number is stored as E.164. Alias: POST /contacts.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 201, body = Contact), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
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
    Id(id): Id<ContactId>,
) -> AppResult<Json<Contact>> {
    let db = state.db().get().await?;
    Ok(Json(contacts::find(&db, auth.tenant, id).await?))
}

#[utoipa::path(put, path = "/api/contacts/{id}", tag = "contacts", request_body = ContactUpdate,
    description = "Changes the given fields; an empty string clears email, company or notes. Alias: PUT /contacts/{id}.",
    params(("id" = Uuid, Path, description = "contact id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Contact), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn update_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<ContactId>,
    AppJson(update): AppJson<ContactUpdate>,
) -> AppResult<Json<Contact>> {
    Ok(Json(
        contacts::update(&state, auth.tenant, id, &update).await?,
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
    Id(id): Id<ContactId>,
) -> AppResult<StatusCode> {
    contacts::delete(&state, auth.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// A .xlsx, .xls, .ods or .csv file with a header row (name, phone; optionally email,
    /// company, notes).
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

#[utoipa::path(post, path = "/api/contacts/upload", tag = "contacts",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    description = "Imports contacts from a spreadsheet in one transaction: valid rows are created; duplicates (in the file or already stored) and invalid rows are reported. A file-level problem (type, size, row count, no header) is an error and imports nothing. Alias: POST /contacts/upload.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = UploadReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_contacts(
    State(state): State<AppState>,
    auth: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Json<UploadReport>> {
    let multipart = multipart.map_err(|rejection| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the file as multipart/form-data ({})",
                rejection.body_text()
            ),
        )
    })?;
    let max_bytes =
        usize::try_from(state.settings().await?.contact_import_max_bytes).unwrap_or(usize::MAX);
    let (file_name, bytes) = read_file_field(multipart, max_bytes).await?;
    let report = upload::import(&state, auth.tenant, &file_name, &bytes).await?;
    Ok(Json(report))
}

/// The first part that carries a file, read up to `max_bytes` (one byte more is a 413, so a
/// huge upload is never held in memory).
async fn read_file_field(
    mut multipart: Multipart,
    max_bytes: usize,
) -> AppResult<(String, Vec<u8>)> {
    let malformed = |err: axum::extract::multipart::MultipartError| {
        AppError::bad_request(
            "invalid_multipart",
            format!("the upload is malformed: {}", err.body_text()),
        )
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > max_bytes {
                return Err(AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the file is larger than {max_bytes} bytes"),
                )
                .with_details(serde_json::json!({ "max_bytes": max_bytes })));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((file_name, bytes));
    }
    Err(AppError::validation(
        "file",
        "attach the spreadsheet as a file part named file",
    ))
}
