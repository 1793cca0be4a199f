//! The simulator's in-memory project: users, sessions (refresh tokens), password-reset codes and
//! the e-mails Stack Auth would have sent.

use std::{collections::HashMap, num::NonZeroU32};

use aws_lc_rs::{
    pbkdf2,
    rand::{SecureRandom, SystemRandom},
};
use serde::Serialize;
use serde_json::{json, Value};

/// Stack Auth's password rules (packages/stack-shared/src/helpers/password.ts): at least 8
/// characters; the maximum was 70 in older releases and 256 in newer ones (we accept up to 256).
pub const PASSWORD_MIN_LENGTH: usize = 8;
pub const PASSWORD_MAX_LENGTH: usize = 256;
/// Verification codes (reset links) are 45 lowercase characters and expire after 7 days
/// (apps/backend/src/route-handlers/verification-code-handler.tsx).
pub const CODE_LENGTH: usize = 45;
pub const CODE_LIFETIME_MILLIS: i64 = 7 * 86_400 * 1000;

const PBKDF2_ITERATIONS: u32 = 1_000;

/// A salted PBKDF2-HMAC-SHA256 digest (cheap on purpose: this is a local simulator).
#[derive(Clone)]
pub struct PasswordHash {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    pub fn new(password: &str) -> Self {
        let mut salt = [0_u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .expect("the system RNG works");
        let mut hash = [0_u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(),
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Self { salt, hash }
    }

    /// Constant-time comparison.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(),
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

fn iterations() -> NonZeroU32 {
    NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN)
}

/// A random string of `len` characters from `[0-9a-z]` (like Stack Auth's
/// `generateSecureRandomString`, which codes and refresh tokens come from).
pub fn random_code(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut bytes = vec![0_u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG works");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Stack Auth stores e-mails normalized: trimmed and lower-cased (lib/emails `normalizeEmail`).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// One user, with the fields Stack Auth's user objects expose.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub primary_email: Option<String>,
    pub primary_email_verified: bool,
    /// Whether the primary e-mail can be used to sign in (false for users that only exist
    /// because `/dev/token` minted a token for them).
    pub primary_email_auth_enabled: bool,
    pub display_name: Option<String>,
    pub profile_image_url: Option<String>,
    pub password: Option<PasswordHash>,
    pub client_metadata: Value,
    pub client_read_only_metadata: Value,
    pub server_metadata: Value,
    pub signed_up_at_millis: i64,
    pub last_active_at_millis: i64,
    /// The OAuth providers connected to the account (`google`, `linkedin`), in the order
    /// they were connected.
    pub oauth_providers: Vec<String>,
}

impl User {
    pub fn new(id: String, email: Option<String>) -> Self {
        let now = now_millis();
        Self {
            id,
            primary_email: email,
            primary_email_verified: false,
            primary_email_auth_enabled: false,
            display_name: None,
            profile_image_url: None,
            password: None,
            client_metadata: Value::Null,
            client_read_only_metadata: Value::Null,
            server_metadata: Value::Null,
            signed_up_at_millis: now,
            last_active_at_millis: now,
            oauth_providers: Vec::new(),
        }
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// What `GET /users/me` returns with client access (`usersCrudClientReadSchema`).
    pub fn client_json(&self) -> Value {
        json!({
            "id": self.id,
            "primary_email": self.primary_email,
            "primary_email_verified": self.primary_email_verified,
            "display_name": self.display_name,
            "selected_team": null,
            "selected_team_id": null,
            "profile_image_url": self.profile_image_url,
            "signed_up_at_millis": self.signed_up_at_millis,
            "has_password": self.has_password(),
            "otp_auth_enabled": false,
            "passkey_auth_enabled": false,
            "client_metadata": self.client_metadata,
            "client_read_only_metadata": self.client_read_only_metadata,
            "is_anonymous": false,
            "is_restricted": false,
            "restricted_reason": null,
            "restricted_by_admin": false,
            "restricted_by_admin_reason": null,
            // Stack Auth's users read schema: `{id, account_id, email}` per connected provider.
            "oauth_providers": self.oauth_providers.iter().map(|id| json!({
                "id": id,
                "account_id": format!("{id}-{}", self.id),
                "email": self.primary_email,
            })).collect::<Vec<_>>(),
            "auth_with_email": self.has_password(),
            "requires_totp_mfa": false,
        })
    }

    /// What `GET /users/{id}` returns with server access (`usersCrudServerReadSchema`).
    pub fn server_json(&self) -> Value {
        let mut value = self.client_json();
        value["primary_email_auth_enabled"] = json!(self.primary_email_auth_enabled);
        value["server_metadata"] = self.server_metadata.clone();
        value["last_active_at_millis"] = json!(self.last_active_at_millis);
        value["restricted_by_admin_private_details"] = Value::Null;
        value["country_code"] = Value::Null;
        value["risk_scores"] = json!({ "sign_up": { "bot": 0, "free_trial_abuse": 0 } });
        value
    }
}

/// A session: what a refresh token stands for; access tokens carry its id as `refresh_token_id`.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub user_id: String,
}

#[derive(Clone, Debug)]
pub struct ResetCode {
    pub user_id: String,
    pub expires_at_millis: i64,
    pub used: bool,
}

/// An e-mail Stack Auth would have sent (listed by `GET /dev/emails`).
#[derive(Clone, Debug, Serialize)]
pub struct SentEmail {
    pub id: String,
    pub to: String,
    /// `password_reset` or `email_verification` (Stack Auth's template types).
    pub template: String,
    pub subject: String,
    pub user_id: String,
    pub callback_url: String,
    /// `callback_url` with `?code=<code>` added: the link in the e-mail.
    pub link: String,
    pub code: String,
    pub sent_at_millis: i64,
}

#[derive(Default)]
pub struct State {
    /// Insertion order (oldest first).
    pub users: Vec<User>,
    /// By refresh token.
    pub sessions: HashMap<String, Session>,
    /// By code (lowercase).
    pub reset_codes: HashMap<String, ResetCode>,
    pub emails: Vec<SentEmail>,
}

impl State {
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    /// The user whose primary e-mail is `email` (compared normalized).
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        let email = normalize_email(email);
        self.users
            .iter()
            .find(|u| u.primary_email.as_deref() == Some(email.as_str()))
    }

    pub fn user_by_email_mut(&mut self, email: &str) -> Option<&mut User> {
        let email = normalize_email(email);
        self.users
            .iter_mut()
            .find(|u| u.primary_email.as_deref() == Some(email.as_str()))
    }

    /// Starts a session for `user_id`; returns its refresh token and id.
    pub fn new_session(&mut self, user_id: &str) -> (String, Session) {
        let refresh_token = random_code(CODE_LENGTH);
        let session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
        };
        self.sessions.insert(refresh_token.clone(), session.clone());
        if let Some(user) = self.user_mut(user_id) {
            user.last_active_at_millis = now_millis();
        }
        (refresh_token, session)
    }

    /// Creates a code and records the e-mail carrying its link.
    pub fn send_code_email(
        &mut self,
        template: &str,
        subject: &str,
        user: &User,
        to: &str,
        callback_url: &str,
    ) -> SentEmail {
        let code = random_code(CODE_LENGTH);
        let email = SentEmail {
            id: uuid::Uuid::new_v4().to_string(),
            to: to.to_owned(),
            template: template.to_owned(),
            subject: subject.to_owned(),
            user_id: user.id.clone(),
            callback_url: callback_url.to_owned(),
            link: with_query_param(callback_url, "code", &code),
            code,
            sent_at_millis: now_millis(),
        };
        self.emails.push(email.clone());
        email
    }
}

/// `url` with `name=value` appended to its query (before any fragment).
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, format!("#{fragment}")),
        None => (url, String::new()),
    };
    let separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!(
        "{base}{separator}{}={}{fragment}",
        form_encode(name),
        form_encode(value)
    )
}

/// `application/x-www-form-urlencoded` encoding, as `URLSearchParams` does it.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Whether `value` looks like an absolute http(s) URL without spaces (Stack Auth's `urlSchema`
/// is stricter in details; UNCONFIRMED which other forms it accepts).
pub fn is_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !value.chars().any(char::is_whitespace)
}

/// A plausible e-mail address: `local@domain` with no spaces.
pub fn is_email(value: &str) -> bool {
    let value = value.trim();
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
