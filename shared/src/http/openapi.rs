//! The OpenAPI document, generated from the route annotations of every endpoint group.

use std::sync::OnceLock;

use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::Group;
use crate::{
    calls::{event::CallStatus, read::CallKind},
    error::ErrorBody,
    leads::LeadStatus,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "AI Calling Agent SaaS API", description = "Backend of the AI calling agent platform: agents, calls, leads, contacts, credits."),
    // Schemas only referenced from query parameters are not collected from the routes.
    components(schemas(ErrorBody, CallKind, CallStatus, LeadStatus)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "stack_access_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-stack-access-token"))),
        );
    }
}

pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, paths) = super::described(&Group::ALL).split_for_parts();
        let mut doc = ApiDoc::openapi();
        doc.merge(paths);
        doc
    })
}

#[cfg(test)]
mod tests {
    fn references(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    match (key.as_str(), value) {
                        ("$ref", serde_json::Value::String(target)) => found.push(target.clone()),
                        _ => references(value, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = serde_json::to_value(super::document()).expect("serializes");
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        let dangling: Vec<&String> = found
            .iter()
            .filter(|target| {
                let pointer = target.trim_start_matches('#');
                !target.starts_with("#/") || document.pointer(pointer).is_none()
            })
            .collect();
        assert!(dangling.is_empty(), "unresolved references: {dangling:?}");
    }
}
