//! CSV downloads: an export streamed as `text/csv`.

use axum::{
    body::Body,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

use crate::export::{self, Export};

pub fn download(db: deadpool_postgres::Object, export: Export) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", export::file_name());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        Body::from_stream(export::stream(db, export)),
    )
        .into_response()
}
