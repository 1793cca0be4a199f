//! The OpenAPI document, generated from the route annotations of every endpoint group.

use std::sync::OnceLock;

use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::Group;
use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "AI Calling Agent SaaS API", description = "Backend of the AI calling agent platform: agents, calls, leads, contacts, credits."),
    components(schemas(ErrorBody)),
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
        let (_, paths) = super::routes(&Group::ALL).split_for_parts();
        let mut doc = ApiDoc::openapi();
        doc.merge(paths);
        doc
    })
}
