//! The token matrix: every forged, stale or unsuitable token answers 401 in the error format,
//! and the two good shapes (ES256 by Bearer, EdDSA by x-stack-access-token) are accepted.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::json;
use simulators::{keys::SigningKey, stack_auth::Issuer};

use crate::support::{error_code, get, stack, url, NewUser};

const PROBE: &str = "/api/user/credits";

async fn rejected(token: &str) -> String {
    error_code(get(PROBE, token).await, 401).await
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// A token whose header and signature we write by hand.
fn handmade(
    header: serde_json::Value,
    claims: &serde_json::Value,
    sign: impl Fn(&str) -> Vec<u8>,
) -> String {
    let signing_input = format!("{}.{}", b64(&header), b64(claims));
    let signature = URL_SAFE_NO_PAD.encode(sign(&signing_input));
    format!("{signing_input}.{signature}")
}

fn hs256(key: &[u8], input: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, input.as_bytes())
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn valid_tokens_are_accepted_by_both_headers_and_algorithms() {
    let user = NewUser::new();
    let response = get(PROBE, &user.token()).await;
    assert_eq!(response.status(), 200);

    let response = stack()
        .http
        .get(url(PROBE))
        .header("x-stack-access-token", user.token_eddsa())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200, "EdDSA via x-stack-access-token");

    let response = stack()
        .http
        .get(url(PROBE))
        .header("authorization", format!("bearer {}", user.token()))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200, "scheme is case-insensitive");
}

/// An accepted token is remembered until it expires (shared/src/tokens/verified.rs), by the
/// whole token: one altered after its original was accepted is checked, and refused.
#[tokio::test]
async fn a_token_altered_after_its_original_was_accepted_is_refused() {
    let user = NewUser::new();
    let token = user.token();
    for _ in 0..2 {
        assert_eq!(get(PROBE, &token).await.status(), 200);
    }
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let flip = |part: &mut String| {
        let first = if part.starts_with('A') { "B" } else { "A" };
        part.replace_range(..1, first);
    };
    flip(&mut parts[2]);
    assert_eq!(
        rejected(&parts.join(".")).await,
        "invalid_token",
        "signature"
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("base64")).expect("json");
    claims["sub"] = json!("someone-else");
    parts[1] = b64(&claims);
    assert_eq!(rejected(&parts.join(".")).await, "invalid_token", "claims");
    assert_eq!(
        get(PROBE, &token).await.status(),
        200,
        "the original still is"
    );
}

#[tokio::test]
async fn missing_or_garbled_tokens() {
    let response = stack().http.get(url(PROBE)).send().await.expect("answers");
    assert_eq!(error_code(response, 401).await, "missing_token");
    for raw in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer abc.def",
        "Bearer a.b.c",
        "Bearer ....",
    ] {
        let response = stack()
            .http
            .get(url(PROBE))
            .header("authorization", raw)
            .send()
            .await
            .expect("answers");
        assert_eq!(error_code(response, 401).await, "invalid_token", "{raw:?}");
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid() {
    let user = NewUser::new();
    let now = chrono::Utc::now().timestamp();
    let expired = user.token_with(|c| {
        c["iat"] = json!(now - 7200);
        c["exp"] = json!(now - 3600);
    });
    assert_eq!(rejected(&expired).await, "token_expired");
    let future = user.token_with(|c| c["nbf"] = json!(now + 3600));
    assert_eq!(rejected(&future).await, "token_not_yet_valid");
    // Within the clock leeway: still accepted.
    let just_expired = user.token_with(|c| c["exp"] = json!(now - 5));
    assert_eq!(get(PROBE, &just_expired).await.status(), 200);
}

#[tokio::test]
async fn wrong_issuer_or_audience() {
    let user = NewUser::new();
    let pid = stack().issuer.project_id.clone();
    let cases = [
        ("iss", json!("https://evil.example/api/v1/projects/x")),
        (
            "iss",
            json!(format!(
                "https://api.stack-auth.com/api/v1/projects-anonymous-users/{pid}"
            )),
        ),
        ("aud", json!("another-project")),
        ("aud", json!(format!("{pid}:anon"))),
        ("aud", json!(format!("{pid}:restricted"))),
    ];
    for (claim, value) in cases {
        let token = user.token_with(|c| c[claim] = value.clone());
        assert_eq!(
            rejected(&token).await,
            "invalid_token_issuer",
            "{claim}={value}"
        );
    }
    let no_aud = user.token_with(|c| {
        c.as_object_mut().expect("object").remove("aud");
    });
    assert_eq!(rejected(&no_aud).await, "invalid_token");
}

#[tokio::test]
async fn anonymous_and_restricted_users() {
    let user = NewUser::new();
    let anonymous = user.token_with(|c| c["is_anonymous"] = json!(true));
    assert_eq!(rejected(&anonymous).await, "user_not_allowed");
    let restricted = user.token_with(|c| {
        c["is_restricted"] = json!(true);
        c["restricted_reason"] = json!({"type": "email_not_verified"});
    });
    assert_eq!(rejected(&restricted).await, "user_not_allowed");
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let user = NewUser::new();
    let real = &stack().issuer.keys.es256;
    let claims = user.claims();

    let none = handmade(json!({"alg": "none", "kid": real.kid}), &claims, |_| {
        Vec::new()
    });
    assert_eq!(rejected(&none).await, "invalid_token");
    let none_upper = handmade(json!({"alg": "NONE", "kid": real.kid}), &claims, |_| {
        Vec::new()
    });
    assert_eq!(rejected(&none_upper).await, "invalid_token");

    // HS256 keyed with the issuer's public key, in the forms an attacker could find.
    let jwk_text = serde_json::to_string(&real.jwk).expect("json");
    for secret in [
        real.public_key.clone(),
        jwk_text.into_bytes(),
        b"secret".to_vec(),
    ] {
        let token = handmade(
            json!({"alg": "HS256", "typ": "JWT", "kid": real.kid}),
            &claims,
            |input| hs256(&secret, input),
        );
        assert_eq!(rejected(&token).await, "invalid_token");
    }

    // An ES256 header naming the EdDSA key: the key's own algorithm wins.
    let ed_kid = stack().issuer.keys.ed25519.kid.clone();
    let mismatched = {
        let mut forged = real.clone();
        forged.kid = ed_kid;
        Issuer::sign(&forged, &claims)
    };
    assert_eq!(rejected(&mismatched).await, "invalid_token");
}

#[tokio::test]
async fn unknown_keys_and_forged_signatures() {
    let user = NewUser::new();
    let stranger = SigningKey::generate_es256().expect("key");
    let unknown = Issuer::sign(&stranger, &user.claims());
    assert_eq!(rejected(&unknown).await, "invalid_token");

    // A stranger's key that claims the real key id: the signature does not verify.
    let mut impostor = stranger.clone();
    impostor.kid = stack().issuer.keys.es256.kid.clone();
    let forged = Issuer::sign(&impostor, &user.claims());
    assert_eq!(rejected(&forged).await, "invalid_token");

    let no_kid = handmade(json!({"alg": "ES256"}), &user.claims(), |_| vec![0; 64]);
    assert_eq!(rejected(&no_kid).await, "invalid_token");
}

#[tokio::test]
async fn tampered_tokens() {
    let user = NewUser::new();
    let token = user.token();
    let parts: Vec<&str> = token.split('.').collect();

    let mut claims = user.claims();
    claims["sub"] = json!(uuid::Uuid::new_v4().to_string());
    let swapped_payload = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(rejected(&swapped_payload).await, "invalid_token");

    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
    signature[10] ^= 0x01;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    assert_eq!(rejected(&flipped).await, "invalid_token");

    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]);
    assert_eq!(rejected(&truncated).await, "invalid_token");
}
