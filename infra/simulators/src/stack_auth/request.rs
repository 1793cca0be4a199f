//! How Stack Auth reads a request (apps/backend/src/route-handlers/smart-request.tsx): the body
//! (by content type), the project authentication headers, the optional user access token, and
//! the schema validation of the body or query (all problems reported in one `SCHEMA_ERROR`).

use axum::http::HeaderMap;
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, jwk::Jwk, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{errors::KnownError, StackAuthSim};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessType {
    Client,
    Server,
    Admin,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Admin => "admin",
        }
    }
}

pub const CLIENT_OR_HIGHER: &[AccessType] =
    &[AccessType::Client, AccessType::Server, AccessType::Admin];
pub const SERVER_OR_HIGHER: &[AccessType] = &[AccessType::Server, AccessType::Admin];

/// The authenticated request: its access type and, with `x-stack-access-token`, the user.
#[derive(Clone, Debug)]
pub struct Auth {
    pub access_type: AccessType,
    pub user_id: Option<String>,
}

/// The decoded user access token.
#[derive(Clone, Debug)]
pub struct TokenUser {
    pub user_id: String,
    pub project_id: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl StackAuthSim {
    /// Stack Auth's `parseAuth`: `Ok(None)` when the request names no access type.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Auth>, KnownError> {
        let project_id = header(headers, "x-stack-project-id");
        let branch_id = header(headers, "x-stack-branch-id").unwrap_or("main");
        let access_type = header(headers, "x-stack-access-type");
        let client_key = header(headers, "x-stack-publishable-client-key");
        let server_key = header(headers, "x-stack-secret-server-key");
        let admin_key = header(headers, "x-stack-super-secret-admin-key");
        let admin_token = header(headers, "x-stack-admin-access-token");
        let access_token = header(headers, "x-stack-access-token");

        let any_key = client_key.is_some()
            || server_key.is_some()
            || admin_key.is_some()
            || admin_token.is_some();
        let Some(access_type) = access_type else {
            if any_key {
                return Err(KnownError::project_key_without_access_type());
            }
            return Ok(None);
        };
        let access_type = match access_type {
            "client" => AccessType::Client,
            "server" => AccessType::Server,
            "admin" => AccessType::Admin,
            other => return Err(KnownError::invalid_access_type(other)),
        };
        let Some(project_id) = project_id else {
            return Err(KnownError::access_type_without_project_id(
                access_type.as_str(),
            ));
        };

        let user_id = match access_token {
            Some(token) => {
                let user = self.decode_access_token(token)?;
                if user.project_id != project_id {
                    return Err(KnownError::invalid_project_for_access_token(
                        project_id,
                        &user.project_id,
                    ));
                }
                Some(user.user_id)
            }
            None => None,
        };

        let our_project = project_id == self.issuer.project_id;
        match access_type {
            AccessType::Client => {
                // Newer Stack Auth projects need no publishable key unless configured to
                // (`requirePublishableClientKey`); a key that is sent must be valid.
                if let Some(key) = client_key {
                    let valid = our_project
                        && self
                            .config
                            .publishable_client_key
                            .as_deref()
                            .is_none_or(|expected| expected == key);
                    if !valid {
                        return Err(KnownError::invalid_publishable_client_key(project_id));
                    }
                }
            }
            AccessType::Server => {
                let Some(key) = server_key else {
                    return Err(KnownError::server_authentication_required());
                };
                if !our_project || key != self.config.secret_server_key {
                    return Err(KnownError::invalid_secret_server_key(project_id));
                }
            }
            AccessType::Admin => {
                // The simulator has no admin keys: any admin request is refused.
                if admin_key.is_none() && admin_token.is_none() {
                    return Err(KnownError::admin_authentication_required());
                }
                return Err(KnownError::invalid_super_secret_admin_key(project_id));
            }
        }
        if !our_project {
            return Err(KnownError::project_not_found(project_id));
        }
        if branch_id != "main" {
            return Err(KnownError::branch_does_not_exist(branch_id));
        }
        Ok(Some(Auth {
            access_type,
            user_id,
        }))
    }

    /// Verifies one of our access tokens (any key of our JWKS, by `kid`) and its expiry.
    pub(super) fn decode_access_token(&self, token: &str) -> Result<TokenUser, KnownError> {
        let header = decode_header(token).map_err(|_| KnownError::unparsable_access_token())?;
        let key = [&self.issuer.keys.es256, &self.issuer.keys.ed25519]
            .into_iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()) && k.algorithm == header.alg)
            .ok_or_else(KnownError::unparsable_access_token)?;
        let jwk: Jwk = serde_json::from_value(key.jwk.clone())
            .map_err(|_| KnownError::unparsable_access_token())?;
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|_| KnownError::unparsable_access_token())?;
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = match decode::<Value>(token, &decoding, &validation) {
            Ok(data) => data.claims,
            Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                let exp = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
                    .ok()
                    .and_then(|d| d.claims["exp"].as_i64())
                    .map(|s| s * 1000);
                return Err(KnownError::access_token_expired(exp));
            }
            Err(_) => return Err(KnownError::unparsable_access_token()),
        };
        let text = |name: &str| claims[name].as_str().map(str::to_owned);
        match (text("sub"), text("project_id").or_else(|| text("aud"))) {
            (Some(user_id), Some(project_id)) => Ok(TokenUser {
                user_id,
                project_id,
            }),
            _ => Err(KnownError::unparsable_access_token()),
        }
    }
}

/// The request must be authenticated with one of `allowed` access types.
pub fn require(auth: Option<Auth>, allowed: &[AccessType]) -> Result<Auth, KnownError> {
    let auth = auth.ok_or_else(KnownError::access_type_required)?;
    if !allowed.contains(&auth.access_type) {
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        return Err(KnownError::insufficient_access_type(
            auth.access_type.as_str(),
            &names,
        ));
    }
    Ok(auth)
}

/// The body as Stack Auth parses it: `None` without a content type, JSON for
/// `application/json`, form fields for `application/x-www-form-urlencoded`.
pub fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Option<Value>, KnownError> {
    let content_type = header(headers, "content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match content_type.as_deref() {
        None | Some("") => Ok(None),
        Some("application/json") => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| KnownError::body_parsing("Request body cannot be parsed as UTF-8"))?;
            serde_json::from_str(text)
                .map(Some)
                .map_err(|_| KnownError::body_parsing("Invalid JSON in request body"))
        }
        Some("application/x-www-form-urlencoded") => Ok(Some(Value::Object(
            parse_form(&String::from_utf8_lossy(bytes))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ))),
        Some("text/plain") => Ok(Some(Value::String(
            String::from_utf8_lossy(bytes).into_owned(),
        ))),
        Some(other) => Err(KnownError::body_parsing(&format!(
            "Unknown content type in request body: {other}"
        ))),
    }
}

/// Decodes `a=1&b=x+y` (the last value of a repeated name wins, as `Object.fromEntries` does).
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (form_decode(name), form_decode(value));
        out.retain(|(n, _)| *n != name);
        out.push((name, value));
    }
    out
}

fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Validates an object (a request body or query) field by field, collecting every problem in
/// yup's wording, then fails with one `SCHEMA_ERROR` (as Stack Auth's `validate` does).
pub struct Fields {
    route: String,
    prefix: &'static str,
    map: Map<String, Value>,
    problems: Vec<String>,
}

impl Fields {
    /// `allowed`: the only keys accepted (Stack Auth rejects unknown body properties); `None`
    /// accepts any.
    pub fn new(
        route: &str,
        prefix: &'static str,
        value: Option<Value>,
        allowed: Option<&[&str]>,
    ) -> Self {
        let mut problems = Vec::new();
        let map = match value {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => {
                problems.push(format!("{prefix} must be defined"));
                Map::new()
            }
            Some(other) => {
                problems.push(format!(
                    "{prefix} must be a `object` type, but the final value was: `{other}`."
                ));
                Map::new()
            }
        };
        if let Some(allowed) = allowed {
            let unknown: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| !allowed.contains(k))
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "{prefix} contains unknown properties: {}",
                    unknown.join(", ")
                ));
            }
        }
        Self {
            route: route.to_owned(),
            prefix,
            map,
            problems,
        }
    }

    pub fn problem(&mut self, key: &str, message: &str) {
        self.problems
            .push(format!("{}.{key} {message}", self.prefix));
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn type_problem(&mut self, key: &str, kind: &str, value: &Value) {
        let problem = format!("must be a `{kind}` type, but the final value was: `{value}`.");
        self.problem(key, &problem);
    }

    /// Absent → `None`; present but not a string → a problem.
    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key).cloned() {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.type_problem(key, "string", &other);
                None
            }
        }
    }

    pub fn required_string(&mut self, key: &str) -> String {
        if !self.has(key) || self.map[key].is_null() {
            self.problem(key, "must be defined");
            return String::new();
        }
        self.optional_string(key).unwrap_or_default()
    }

    /// Absent → `None`; `null` → `Some(None)`.
    pub fn nullable_string(&mut self, key: &str) -> Option<Option<String>> {
        match self.map.get(key) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => self.optional_string(key).map(Some),
        }
    }

    pub fn optional_bool(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key).cloned() {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => {
                self.type_problem(key, "boolean", &other);
                None
            }
        }
    }

    /// Any JSON value (metadata fields).
    pub fn optional_json(&self, key: &str) -> Option<Value> {
        self.map.get(key).cloned()
    }

    pub fn finish(self) -> Result<(), KnownError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(KnownError::schema(&self.route, &self.problems))
        }
    }
}
