//! Every rejection in the error format, with the right status and a stable code; no malformed
//! request produces a 5xx. Also health, request ids, CORS, the OpenAPI document and paging.

use futures::StreamExt;
use reqwest::{header, Method};
use serde_json::{json, Value};
use shared::http::Group;

use crate::support::{apply_change, error_code, get, json, pool, stack, url, NewUser};

#[tokio::test]
async fn health_checks_the_database() {
    let response = stack()
        .http
        .get(url("/health"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        json(response).await,
        json!({"status": "ok", "database": "ok", "database_circuit": "closed"})
    );
}

#[tokio::test]
async fn framework_rejections_use_the_error_format() {
    let http = &stack().http;
    let token = NewUser::new().token();

    let unknown = http.get(url("/api/nope")).send().await.expect("answers");
    assert_eq!(error_code(unknown, 404).await, "route_not_found");

    let wrong_method = http.delete(url("/health")).send().await.expect("answers");
    assert!(wrong_method.headers().contains_key(header::ALLOW));
    assert_eq!(error_code(wrong_method, 405).await, "method_not_allowed");

    let put = |body: reqwest::Body, content_type: &str| {
        http.put(url("/auth/profile"))
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let malformed = put("{\"name\": ".into(), "application/json")
        .await
        .expect("answers");
    assert_eq!(error_code(malformed, 400).await, "invalid_json");
    let wrong_shape = put("{\"name\": 5}".into(), "application/json")
        .await
        .expect("answers");
    assert_eq!(error_code(wrong_shape, 400).await, "validation_error");
    let wrong_type = put("name=x".into(), "text/plain").await.expect("answers");
    assert_eq!(error_code(wrong_type, 415).await, "unsupported_media_type");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let too_large = put(huge.into(), "application/json").await.expect("answers");
    assert_eq!(error_code(too_large, 413).await, "payload_too_large");

    let bad_query = get("/billing/history?limit=lots", &token).await;
    assert_eq!(error_code(bad_query, 400).await, "invalid_query");
    let bad_limit = get("/billing/history?limit=0", &token).await;
    assert_eq!(error_code(bad_limit, 400).await, "validation_error");
    let bad_cursor = get("/billing/history?cursor=%27%3B--", &token).await;
    assert_eq!(error_code(bad_cursor, 400).await, "invalid_cursor");
    let bad_type = get("/billing/history?type=gift", &token).await;
    assert_eq!(error_code(bad_type, 400).await, "validation_error");
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every documented operation of every endpoint group: (method, path template).
fn every_operation() -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for group in Group::ALL {
        let document = serde_json::to_value(group.openapi()).expect("serializes");
        let paths = document["paths"].as_object().expect("paths");
        assert!(!paths.is_empty(), "{group:?} documents no route");
        for (path, item) in paths {
            for method in METHODS.iter().filter(|m| item[**m].is_object()) {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                operations.push((method, path.clone()));
            }
        }
    }
    operations
}

/// Every operation as design.md's alias paths reach it: (method, alias path template, the
/// documented path template it is forwarded to).
fn every_alias_operation() -> Vec<(Method, String, String)> {
    let mut operations = Vec::new();
    for group in Group::ALL {
        let document = serde_json::to_value(group.openapi()).expect("serializes");
        let paths = document["paths"].as_object().expect("paths");
        for alias in group.aliases() {
            let aliased: Vec<(String, String)> = paths
                .keys()
                .filter_map(|path| Some((alias.of(path)?, path.clone())))
                .collect();
            assert!(!aliased.is_empty(), "{alias:?} reaches no documented path");
            for (alias_path, path) in aliased {
                for method in METHODS.iter().filter(|m| paths[&path][**m].is_object()) {
                    let method =
                        Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                    operations.push((method, alias_path.clone(), path.clone()));
                }
            }
        }
    }
    operations
}

/// `template` with every `{parameter}` replaced by `value`.
fn filled(template: &str, value: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                value
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every route's path, its parameters once a well-formed id nobody has and once garbage.
fn every_route_path() -> Vec<String> {
    let aliases = every_alias_operation()
        .into_iter()
        .map(|(_, alias, _)| alias);
    let mut paths: Vec<String> = every_operation()
        .into_iter()
        .map(|(_, template)| template)
        .chain(aliases)
        .flat_map(|template| {
            [
                filled(&template, &uuid::Uuid::new_v4().to_string()),
                filled(&template, "%27%3B--%00"),
            ]
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[tokio::test]
async fn no_malformed_request_gets_a_5xx() {
    let fixed = [
        "/health",
        "/auth/profile",
        "/billing/credits",
        "/api/user/credits",
        "/billing/history",
        "/billing/history?limit=-1&cursor=",
        "/billing/history?cursor=eyJ4Ijo1fQ",
        "/api/openapi.json",
        "/%00",
        "/auth/profile/../../etc/passwd",
        "/billing/history?limit=99999999999999999999",
    ];
    let mut paths: Vec<String> = fixed.iter().map(|p| (*p).to_owned()).collect();
    paths.extend(every_route_path());
    let bodies: [&[u8]; 5] = [
        b"",
        b"null",
        b"[]",
        b"{\"name\": null}",
        b"\xff\xfe\x00garbage",
    ];
    let mut requests = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        // A user and a source address per path, so its requests stay within one account's
        // (and one source's) rate budget and reach the handlers, and the failed webhook
        // signatures sent here do not spend the budget of the tests running beside it.
        let token = NewUser::new().token();
        let source = format!("203.0.113.{}", index % 254 + 1);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            for body in bodies {
                for auth in [None, Some(token.as_str()), Some("garbage")] {
                    let mut request = stack()
                        .http
                        .request(method.clone(), url(path))
                        .header(header::CONTENT_TYPE, "application/json")
                        .header("x-forwarded-for", &source)
                        .body(body.to_vec());
                    if let Some(auth) = auth {
                        request = request.bearer_auth(auth);
                    }
                    let method = method.clone();
                    let path = path.clone();
                    requests.push(async move {
                        let response = request.send().await.expect("answers");
                        let status = response.status();
                        assert!(status.as_u16() < 500, "{method} {path} -> {status}");
                        if !status.is_success() {
                            let body = json(response).await;
                            assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
                        }
                    });
                }
            }
        }
    }
    futures::stream::iter(requests)
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test]
async fn request_ids_are_returned_and_unique() {
    let first = stack()
        .http
        .get(url("/health"))
        .send()
        .await
        .expect("answers");
    let second = stack()
        .http
        .get(url("/nowhere"))
        .send()
        .await
        .expect("answers");
    let id = |r: &reqwest::Response| {
        r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert!(!id(&first).is_empty());
    assert_ne!(id(&first), id(&second));
}

#[tokio::test]
async fn cors_allows_only_the_frontend() {
    let frontend = std::env::var("FRONTEND_URL").expect("scripts/test sets FRONTEND_URL");
    let preflight = |origin: String| {
        stack()
            .http
            .request(Method::OPTIONS, url("/api/user/credits"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, x-stack-access-token",
            )
            .send()
    };
    let allowed = preflight(frontend.clone()).await.expect("answers");
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        frontend.as_str()
    );
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    // A page can read how long to wait and a download's name only when they are exposed.
    let answer = stack()
        .http
        .get(url("/health"))
        .header(header::ORIGIN, frontend.as_str())
        .send()
        .await
        .expect("answers");
    let exposed = answer.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    for name in ["retry-after", "content-disposition", "etag"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let foreign = preflight("https://evil.example".into())
        .await
        .expect("answers");
    assert!(!foreign
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let doc = json(
        stack()
            .http
            .get(url("/api/openapi.json"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in [
        ("/health", "get"),
        ("/api/openapi.json", "get"),
        ("/auth/profile", "get"),
        ("/auth/profile", "put"),
        ("/billing/credits", "get"),
        ("/api/user/credits", "get"),
        ("/billing/history", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let operations = every_operation();
    for (method, path) in &operations {
        let method = method.as_str().to_lowercase();
        assert!(
            doc["paths"][path][&method].is_object(),
            "{method} {path} missing"
        );
    }
    // And every documented operation is served: its method on its path reaches a handler.
    let probes = operations.into_iter().map(|(method, template)| async move {
        let path = filled(&template, &uuid::Uuid::new_v4().to_string());
        let response = stack()
            .http
            .request(method.clone(), url(&path))
            .send()
            .await
            .expect("answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        let unrouted = status == 405 || body["error"]["code"] == "route_not_found";
        assert!(
            !unrouted,
            "{method} {template} is documented but not served"
        );
    });
    futures::stream::iter(probes)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test]
async fn history_pages_have_no_gaps_or_duplicates() {
    let user = NewUser::new();
    let token = user.token();
    get("/auth/profile", &token).await;
    let pool = pool(2);
    let mut client = pool.get().await.expect("conn");
    let tenant = shared::users::provision(&mut client, &user.identity())
        .await
        .expect("user")
        .tenant();
    for i in 0..6 {
        apply_change(
            &pool,
            tenant,
            shared::credits::CreditKind::Usage,
            -1,
            format!("{}-{i}", user.sub),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/billing/history?limit=3&cursor={c}"),
            None => "/billing/history?limit=3".into(),
        };
        let page = json(get(&path, &token).await).await;
        assert_eq!(page["pagination"]["total"], 7);
        assert_eq!(page["pagination"]["limit"], 3);
        for entry in page["data"].as_array().expect("data") {
            seen.push(entry["id"].as_str().expect("id").to_owned());
            assert_eq!(entry["user_id"].as_str(), Some(tenant.to_string().as_str()));
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen.len(), 7);
    assert_eq!(unique.len(), 7);
    let usage = json(get("/billing/history?type=usage", &token).await).await;
    assert_eq!(usage["pagination"]["total"], 6);
    let other = json(get("/billing/history", &NewUser::new().token()).await).await;
    assert_eq!(
        other["pagination"]["total"], 1,
        "another tenant sees only its own bonus"
    );
}

/// design.md's error categories, each produced by a real request with its stable code: 400
/// validation, 401, 403, 404, 429, 502 (500, database connection issues, needs Postgres stopped:
/// tests/chaos). Every body is `{"error":{"code","message","timestamp"}}`.
#[tokio::test]
async fn every_error_category_answers_its_design_status() {
    let user = crate::support::Account::new().await;
    let agent = json(
        crate::support::post(
            "/api/agents",
            &user.token,
            &json!({"name": "Categories", "type": "call", "system_prompt": "Hi."}),
        )
        .await,
    )
    .await;
    let id = agent["id"].as_str().expect("id");
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let http = &stack().http;

    // 400 validation: a rule broken, and a body of the wrong shape.
    let response = crate::support::post(
        "/api/contacts",
        &user.token,
        &json!({"name": "X", "phone_number": "123"}),
    )
    .await;
    assert_eq!(error_code(response, 400).await, "validation_error");
    let response = crate::support::post("/api/contacts", &user.token, &json!({"name": 5})).await;
    assert_eq!(error_code(response, 400).await, "validation_error");
    // 401: no token, or a forged one.
    let response = http.get(url("/api/calls")).send().await.expect("answers");
    assert_eq!(error_code(response, 401).await, "missing_token");
    // 403: a user on an admin route.
    assert_eq!(
        error_code(get("/admin/users", &user.token).await, 403).await,
        "admin_required"
    );
    // 404: another id.
    let missing = format!("/api/agents/{}", uuid::Uuid::new_v4());
    assert_eq!(
        error_code(get(&missing, &user.token).await, 404).await,
        "not_found"
    );
    // 429: an account past its request budget.
    let flood = futures::stream::iter(0..300)
        .map(|_| get("/api/user/credits", &user.token))
        .buffer_unordered(300)
        .collect::<Vec<_>>()
        .await;
    let limited = flood
        .into_iter()
        .find(|r| r.status() == 429)
        .expect("a 429");
    assert_eq!(error_code(limited, 429).await, "rate_limited");
    // 502: ElevenLabs failing.
    crate::support::elevenlabs_sim::fault(json!({
        "path_prefix": format!("/v1/convai/agents/{remote}"),
        "method": "GET",
        "responses": [{"status": 500}, {"status": 500}, {"status": 500}, {"status": 500}],
    }))
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let response = get(&format!("/api/agents/{id}/config"), &user.token).await;
    assert_eq!(error_code(response, 502).await, "upstream_error");
}

/// design.md's alias paths answer exactly as the documented paths they stand for.
#[tokio::test]
async fn every_alias_answers_as_its_documented_path() {
    let token = NewUser::new().token();
    let operations = every_alias_operation();
    assert!(operations.len() >= 10, "{operations:?}");
    for (method, alias, path) in operations {
        let id = uuid::Uuid::new_v4().to_string();
        let mut statuses = Vec::new();
        for template in [&alias, &path] {
            let response = stack()
                .http
                .request(
                    method.clone(),
                    url(&format!("{}?limit=5", filled(template, &id))),
                )
                .bearer_auth(&token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .expect("answers");
            statuses.push(response.status().as_u16());
        }
        assert_eq!(
            statuses[0], statuses[1],
            "{method} {alias} answers unlike {path}"
        );
        assert_ne!(statuses[0], 405, "{method} {alias}");
    }
}
