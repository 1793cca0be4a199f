//! `GET /api/v1/auth/oauth/authorize/{provider_id}`
//! (apps/backend/src/app/api/latest/auth/oauth/authorize/[provider_id]/route.tsx): the start of
//! Stack Auth's OAuth flow. It answers `307` to the provider's authorization URL, or
//! `200 {"location": url}` with `stack_response_mode=json` (older releases: `response_mode`).
//! The URL is built as Stack Auth's providers build it (apps/backend/src/oauth/providers/*.tsx,
//! openid-client's `authorizationUrl`); its `redirect_uri` is Stack Auth's own callback
//! (`/api/v1/auth/oauth/callback/{provider}`), which the simulator does not serve.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde_json::{json, Value};

use super::{
    errors::{ApiError, ApiResult, KnownError},
    request::{parse_form, Fields},
    store::{form_encode, is_url, random_code},
    StackAuthSim, PUBLIC_CLIENT_SECRET,
};

/// An enabled provider: its authorization endpoint, base scope, extra parameters and whether it
/// uses PKCE (LinkedIn does not).
struct Provider {
    authorization_endpoint: &'static str,
    client_id: &'static str,
    scope: &'static str,
    extra: &'static [(&'static str, &'static str)],
    pkce: bool,
}

fn provider(id: &str) -> Option<Provider> {
    match id {
        "google" => Some(Provider {
            authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth",
            client_id: "sim-google-client-id.apps.googleusercontent.com",
            scope: "https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
            extra: &[("include_granted_scopes", "true")],
            pkce: true,
        }),
        "linkedin" => Some(Provider {
            authorization_endpoint: "https://www.linkedin.com/oauth/v2/authorization",
            client_id: "sim-linkedin-client-id",
            scope: "openid profile email",
            extra: &[],
            pkce: false,
        }),
        _ => None,
    }
}

/// The query parameters Stack Auth's authorize endpoint requires.
const REQUIRED: &[&str] = &[
    "client_id",
    "client_secret",
    "redirect_uri",
    "scope",
    "state",
    "grant_type",
    "code_challenge",
    "code_challenge_method",
    "response_type",
];

pub async fn authorize(
    State(sim): State<Arc<StackAuthSim>>,
    Path(provider_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let route = format!("GET /api/v1/auth/oauth/authorize/{provider_id}");
    let params: HashMap<String, String> = parse_form(query.as_deref().unwrap_or_default())
        .into_iter()
        .collect();
    let query_value = Value::Object(params.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
    let mut fields = Fields::new(&route, "query", Some(query_value), None);
    for key in REQUIRED {
        fields.required_string(key);
    }
    if params
        .get("grant_type")
        .is_some_and(|g| g != "authorization_code")
    {
        fields.problem(
            "grant_type",
            "must be one of the following values: authorization_code",
        );
    }
    if let Some(kind) = params.get("type") {
        if kind != "authenticate" && kind != "link" {
            fields.problem(
                "type",
                "must be one of the following values: authenticate, link",
            );
        }
    }
    for key in [
        "redirect_uri",
        "error_redirect_url",
        "error_redirect_uri",
        "after_callback_redirect_url",
    ] {
        if let Some(url) = params.get(key) {
            if url.chars().any(char::is_whitespace) {
                fields.problem(key, "contains spaces");
            }
            if !is_url(url) {
                fields.problem(key, "is not a valid URL");
            }
        }
    }
    fields.finish()?;

    let param = |key: &str| params.get(key).map(String::as_str).unwrap_or_default();
    // The client id is the project id, optionally `<project id>#<branch id>`.
    let client_id = param("client_id");
    let (project, branch) = client_id.split_once('#').unwrap_or((client_id, "main"));
    if project != sim.issuer.project_id || branch != "main" {
        return Err(KnownError::invalid_oauth_client_id_or_secret(client_id).into());
    }
    let secret = param("client_secret");
    let secret_ok = secret == PUBLIC_CLIENT_SECRET
        || sim
            .config
            .publishable_client_key
            .as_deref()
            .is_none_or(|key| key == secret);
    if !secret_ok {
        return Err(KnownError::invalid_publishable_client_key(project).into());
    }
    let Some(provider) = provider(&provider_id) else {
        return Err(KnownError::oauth_provider_not_found_or_not_enabled().into());
    };
    if param("type") == "link" && param("token").is_empty() {
        return Err(ApiError::Status(
            StatusCode::BAD_REQUEST,
            "?token= query parameter is required for link type".into(),
        ));
    }
    if !param("token").is_empty() {
        let user = sim.decode_access_token(param("token"))?;
        if user.project_id != sim.issuer.project_id {
            return Err(ApiError::Status(
                StatusCode::FORBIDDEN,
                "The access token is not valid for this project".into(),
            ));
        }
    }

    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let callback = format!("http://{host}/api/v1/auth/oauth/callback/{provider_id}");
    let mut scope = provider.scope.to_owned();
    for extra in param("provider_scope").split_whitespace() {
        if !scope.split(' ').any(|s| s == extra) {
            scope.push(' ');
            scope.push_str(extra);
        }
    }
    let inner_state = random_code(43);
    let mut pairs: Vec<(&str, String)> = vec![
        ("client_id", provider.client_id.to_owned()),
        ("scope", scope),
        ("response_type", "code".to_owned()),
        ("redirect_uri", callback),
    ];
    if provider.pkce {
        pairs.push(("code_challenge_method", "S256".to_owned()));
        pairs.push(("code_challenge", random_code(43)));
    }
    pairs.push(("state", inner_state.clone()));
    pairs.push(("access_type", "offline".to_owned()));
    pairs.push(("prompt", "consent".to_owned()));
    for (name, value) in provider.extra {
        pairs.push((name, (*value).to_owned()));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    let location = format!("{}?{}", provider.authorization_endpoint, query.join("&"));

    let json_mode = param("stack_response_mode") == "json" || param("response_mode") == "json";
    if json_mode {
        return Ok(Json(json!({ "location": location })).into_response());
    }
    Ok((
        StatusCode::TEMPORARY_REDIRECT,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                format!("stack-oauth-inner-{inner_state}=true; Path=/; Max-Age=600; HttpOnly"),
            ),
        ],
    )
        .into_response())
}
