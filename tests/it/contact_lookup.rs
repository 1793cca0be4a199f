//! Contact lookup for ElevenLabs' conversation initiation: the shared-secret header, the
//! `conversation_initiation_client_data` answer, and tenant isolation of contacts.

use serde_json::{json, Value};

use crate::support::{db, error_code, json, phone, stack, url, Tenant};

const SECRET_HEADER: &str = "x-contact-lookup-secret";

fn lookup_secret() -> String {
    std::env::var("CONTACT_LOOKUP_SECRET").expect("scripts/test sets CONTACT_LOOKUP_SECRET")
}

struct Contact<'a> {
    name: &'a str,
    phone: &'a str,
    company: Option<&'a str>,
    notes: Option<&'a str>,
    email: Option<&'a str>,
}

/// There is no contacts API yet, so contacts go straight into the table; the contact's id.
async fn insert_contact(tenant: &Tenant, contact: &Contact<'_>) -> uuid::Uuid {
    db().await
        .query_one(
            "INSERT INTO contacts (user_id, name, phone_number, company, notes, email)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &tenant.id,
                &contact.name,
                &contact.phone,
                &contact.company,
                &contact.notes,
                &contact.email,
            ],
        )
        .await
        .expect("contact")
        .get(0)
}

/// ElevenLabs' conversation-initiation request for an inbound call from `caller` to `agent`.
async fn initiation(agent: &str, caller: &str, secret: Option<&str>) -> reqwest::Response {
    let mut request = stack().http.post(url("/api/contact-lookup")).json(&json!({
        "caller_id": caller,
        "agent_id": agent,
        "called_number": "+15550100000",
        "call_sid": "CA0123456789abcdef0123456789abcdef",
    }));
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.expect("the API answers")
}

async fn by_phone(agent: &str, phone: &str, secret: Option<&str>) -> reqwest::Response {
    by_phone_at("/api/contact-lookup", agent, phone, secret).await
}

/// The GET form at `path` (design.md names it `/api/contact-lookup/:phone` and
/// `/api/lookup/:phone`).
async fn by_phone_at(
    path: &str,
    agent: &str,
    phone: &str,
    secret: Option<&str>,
) -> reqwest::Response {
    let mut request = stack()
        .http
        .get(url(&format!("{path}/{}", urlencoding(phone))))
        .query(&[("agent_id", agent)]);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.expect("the API answers")
}

/// The dynamic variables of a successful answer, after checking its shape.
async fn variables(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{}", response.url());
    let body = json(response).await;
    assert_eq!(
        body["type"], "conversation_initiation_client_data",
        "{body}"
    );
    body["dynamic_variables"].clone()
}

#[tokio::test]
async fn the_owning_tenants_contact_fills_the_dynamic_variables() {
    let tenant = Tenant::new().await;
    let number = phone();
    let id = insert_contact(
        &tenant,
        &Contact {
            name: "Dana Scully",
            phone: &number,
            company: Some("FBI"),
            notes: Some("Prefers mornings"),
            email: Some("dana@example.test"),
        },
    )
    .await;
    let secret = lookup_secret();
    let expected = json!({
        "customer_name": "Dana Scully",
        "customer_company": "FBI",
        "customer_notes": "Prefers mornings",
        "customer_email": "dana@example.test",
        "customer_phone": number,
        "contact_found": true,
        "company": "FBI",
        "contact_id": id.to_string(),
        "tenant_id": tenant.id.to_string(),
    });
    let posted = variables(initiation(&tenant.call_agent, &number, Some(&secret)).await).await;
    assert_eq!(posted, expected);

    // The GET form, with the number written the way a person would: it is normalized first.
    let local = format!("({}) {}-{}", &number[2..5], &number[5..8], &number[8..]);
    let fetched = variables(by_phone(&tenant.call_agent, &local, Some(&secret)).await).await;
    assert_eq!(fetched, expected);
    let external = by_phone_at("/api/lookup", &tenant.call_agent, &number, Some(&secret)).await;
    assert_eq!(variables(external).await, expected);
    let unsigned = by_phone_at("/api/lookup", &tenant.call_agent, &number, None).await;
    assert_eq!(unsigned.status(), 401);
}

/// A number as one path segment (`+` and spaces kept as written).
fn urlencoding(phone: &str) -> String {
    phone
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace(' ', "%20")
        .replace('/', "%2F")
}

#[tokio::test]
async fn each_agent_sees_only_its_own_tenants_contact_for_a_shared_number() {
    let (first, second) = (Tenant::new().await, Tenant::new().await);
    let number = phone();
    for (tenant, name) in [(&first, "First's contact"), (&second, "Second's contact")] {
        insert_contact(
            tenant,
            &Contact {
                name,
                phone: &number,
                company: Some(name),
                notes: None,
                email: None,
            },
        )
        .await;
    }
    let secret = lookup_secret();
    for (tenant, name) in [(&first, "First's contact"), (&second, "Second's contact")] {
        // Chat agents of a tenant see the same contacts as its call agents.
        for agent in [&tenant.call_agent, &tenant.chat_agent] {
            let posted = variables(initiation(agent, &number, Some(&secret)).await).await;
            assert_eq!(posted["customer_name"], name, "{agent}");
            assert_eq!(posted["customer_company"], name, "{agent}");
            assert_eq!(posted["customer_notes"], "", "{agent}");
            let fetched = variables(by_phone(agent, &number, Some(&secret)).await).await;
            assert_eq!(fetched, posted, "{agent}");
        }
    }
}

#[tokio::test]
async fn unknown_numbers_agents_and_deleted_contacts_get_the_empty_answer() {
    let tenant = Tenant::new().await;
    let other = Tenant::new().await;
    let (known, deleted) = (phone(), phone());
    insert_contact(
        &other,
        &Contact {
            name: "Someone else's",
            phone: &known,
            company: None,
            notes: None,
            email: None,
        },
    )
    .await;
    insert_contact(
        &tenant,
        &Contact {
            name: "Gone",
            phone: &deleted,
            company: Some("Deleted Inc"),
            notes: None,
            email: None,
        },
    )
    .await;
    db().await
        .execute(
            "UPDATE contacts SET deleted_at = now() WHERE user_id = $1",
            &[&tenant.id],
        )
        .await
        .expect("soft delete");
    let owner = tenant.id.to_string();
    let empty = |number: &str, tenant: &str| {
        json!({
            "customer_name": "", "customer_company": "", "customer_notes": "", "customer_email": "",
            "customer_phone": number, "contact_found": false, "company": "", "contact_id": "",
            "tenant_id": tenant,
        })
    };
    let secret = lookup_secret();
    let cases = [
        (&tenant.call_agent, known.as_str(), empty(&known, &owner)),
        (
            &tenant.call_agent,
            deleted.as_str(),
            empty(&deleted, &owner),
        ),
        (
            &"agent_nobody_knows".to_owned(),
            known.as_str(),
            empty(&known, ""),
        ),
        // Not a phone number at all: nothing to look up, nothing to echo.
        (&tenant.call_agent, "anonymous", empty("", &owner)),
        // Written like one, but no number has the area code 200: not echoed either.
        (&tenant.call_agent, "+1 200 555 0100", empty("", &owner)),
    ];
    for (agent, caller, expected) in cases {
        let posted = variables(initiation(agent, caller, Some(&secret)).await).await;
        assert_eq!(posted, expected, "{agent} {caller}");
    }
    let fetched = variables(by_phone(&tenant.call_agent, &known, Some(&secret)).await).await;
    assert_eq!(fetched, empty(&known, &owner));
}

#[tokio::test]
async fn a_missing_or_wrong_secret_is_401_in_the_error_format() {
    let tenant = Tenant::new().await;
    let number = phone();
    insert_contact(
        &tenant,
        &Contact {
            name: "Private Person",
            phone: &number,
            company: None,
            notes: None,
            email: None,
        },
    )
    .await;
    let secret = lookup_secret();
    let shorter = &secret[..secret.len() - 1];
    let longer = format!("{secret}0");
    let bad: [Option<&str>; 5] = [None, Some(""), Some("wrong"), Some(shorter), Some(&longer)];
    for given in bad {
        let response = initiation(&tenant.call_agent, &number, given).await;
        assert_eq!(
            error_code(response, 401).await,
            "invalid_lookup_secret",
            "{given:?}"
        );
        let response = by_phone(&tenant.call_agent, &number, given).await;
        assert_eq!(
            error_code(response, 401).await,
            "invalid_lookup_secret",
            "{given:?}"
        );
    }
    // The secret is checked before the request is: a bad one learns nothing about agent_id.
    let response = stack()
        .http
        .post(url("/api/contact-lookup"))
        .json(&json!({"caller_id": number}))
        .send()
        .await
        .expect("answers");
    assert_eq!(error_code(response, 401).await, "invalid_lookup_secret");
    let response = stack()
        .http
        .post(url("/api/contact-lookup"))
        .header(SECRET_HEADER, &secret)
        .json(&json!({"caller_id": number}))
        .send()
        .await
        .expect("answers");
    assert_eq!(error_code(response, 400).await, "validation_error");
}

#[tokio::test]
async fn hostile_contact_fields_come_back_verbatim_as_json() {
    let tenant = Tenant::new().await;
    let number = phone();
    let name = "Robert'); DROP TABLE contacts;-- \"Bobby\" \\ </script><script>alert(1)</script>";
    let company = "=HYPERLINK(\"http://evil.test\")\u{0007}\u{001b}[31m";
    let notes = "line one\nline two\r\n\ttabbed ☎️ Zoë 🙂 \u{202e}reversed {{customer_name}}";
    let email = "x@example.test\"}, \"contact_found\": true, \"y\": {\"";
    insert_contact(
        &tenant,
        &Contact {
            name,
            phone: &number,
            company: Some(company),
            notes: Some(notes),
            email: Some(email),
        },
    )
    .await;
    let response = initiation(&tenant.call_agent, &number, Some(&lookup_secret())).await;
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let posted = variables(response).await;
    assert_eq!(posted["customer_name"], name);
    assert_eq!(posted["customer_company"], company);
    assert_eq!(posted["customer_notes"], notes);
    assert_eq!(posted["customer_email"], email);
    assert_eq!(
        posted.as_object().map(|o| o.len()),
        Some(9),
        "no field was injected: {posted}"
    );
}
