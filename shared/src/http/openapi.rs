//! The OpenAPI document, generated from the route annotations of every endpoint group, with
//! design.md's alias paths as operations of their own (a client generated from it calls
//! `/agents` as design.md names it).

use std::sync::OnceLock;

use utoipa::{
    openapi::{
        path::{Operation, PathItem},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
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
        let aliases = Group::ALL.iter().flat_map(|group| group.aliases());
        let aliased: Vec<(String, PathItem)> = aliases
            .flat_map(|alias| {
                doc.paths.paths.iter().filter_map(|(path, item)| {
                    let aliased = alias.of(path)?;
                    Some((aliased.clone(), aliased_item(item, path, &aliased)))
                })
            })
            .collect();
        doc.paths.paths.extend(aliased);
        doc
    })
}

/// The operations of `item` (documented at `path`) as served at `alias`: the same parameters,
/// bodies and answers, with their own operation ids (which must be unique in a document).
fn aliased_item(item: &PathItem, path: &str, alias: &str) -> PathItem {
    let mut item = item.clone();
    let suffix: String = alias
        .trim_start_matches('/')
        .chars()
        .filter(|c| !matches!(c, '{' | '}'))
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let operations: [&mut Option<Operation>; 5] = [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ];
    for operation in operations.into_iter().flatten() {
        operation.operation_id = operation
            .operation_id
            .as_ref()
            .map(|id| format!("{id}_at_{suffix}"));
        let served = format!("design.md's path for `{path}`, which answers the same.");
        operation.description = Some(match operation.description.take() {
            Some(description) => format!("{description}\n\n{served}"),
            None => served,
        });
    }
    item
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
    fn aliases_are_documented_with_their_own_operation_ids() {
        let document = serde_json::to_value(super::document()).expect("serializes");
        for (alias, served, method) in [
            ("/agents", "/api/agents", "post"),
            ("/agents/{id}/config", "/api/agents/{id}/config", "get"),
            ("/contacts/upload", "/api/contacts/upload", "post"),
            ("/analytics/dashboard", "/api/dashboard/overview", "get"),
        ] {
            let (alias, served) = (
                &document["paths"][alias][method],
                &document["paths"][served][method],
            );
            assert_eq!(alias["responses"], served["responses"]);
            assert_ne!(alias["operationId"], served["operationId"]);
        }
    }

    #[test]
    fn parameters_are_where_they_are_read() {
        let document = serde_json::to_value(super::document()).expect("serializes");
        let mut misplaced = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().expect("name");
                    let in_path = path.contains(&format!("{{{name}}}"));
                    if (parameter["in"] == "path") != in_path {
                        misplaced.push(format!("{method} {path}: {name} in {}", parameter["in"]));
                    }
                }
            }
        }
        assert!(misplaced.is_empty(), "{misplaced:#?}");
        let list = &document["paths"]["/api/calls"]["get"]["parameters"];
        let limit = list
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "limit");
        assert_eq!(limit.expect("limit")["in"], "query");
    }

    #[test]
    fn the_report_is_documented_as_json_and_as_csv() {
        let document = serde_json::to_value(super::document()).expect("serializes");
        let content =
            &document["paths"]["/analytics/reports"]["get"]["responses"]["200"]["content"];
        assert!(
            content["application/json"]["schema"].is_object(),
            "{content}"
        );
        assert!(content["text/csv"]["schema"].is_object(), "{content}");
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
