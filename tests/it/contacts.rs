//! Contacts CRUD: E.164 normalization, duplicates by number, search and pages, aliases,
//! tenant isolation, hostile text.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_normalizes_the_number_and_refuses_a_second_contact_with_it() {
    let account = Account::new().await;
    let response = post(
        "/api/contacts",
        &account.token,
        &json!({"name": "  Ada Lovelace ", "phone_number": "(415) 555-2671",
                "email": "Ada@Example.com", "company": "Analytical", "notes": "line 1\nline 2"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let contact = json(response).await;
    assert_eq!(contact["name"], "Ada Lovelace");
    assert_eq!(contact["phone_number"], "+14155552671");
    assert_eq!(contact["email"], "Ada@Example.com", "kept as typed");
    assert_eq!(contact["notes"], "line 1\nline 2");
    assert_eq!(contact["user_id"], account.id.to_string());

    let response = post(
        "/contacts",
        &account.token,
        &json!({"name": "Someone else", "phone_number": "+1 415 555 2671"}),
    )
    .await;
    assert_eq!(response.status(), 409);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "duplicate_contact");
    assert_eq!(
        body["error"]["details"]["existing_contact_id"],
        contact["id"]
    );
}

#[tokio::test]
async fn invalid_contacts_get_field_errors() {
    let account = Account::new().await;
    for (body, field) in [
        (json!({"name": "A", "phone_number": "12"}), "phone_number"),
        (
            json!({"name": "A", "phone_number": "=HYPERLINK(\"x\")"}),
            "phone_number",
        ),
        (json!({"name": "", "phone_number": "+14155552671"}), "name"),
        (
            json!({"name": "A\u{0}B", "phone_number": "+14155552671"}),
            "name",
        ),
        (
            json!({"name": "A", "phone_number": "+14155552671", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"name": "A", "phone_number": "+14155552671", "notes": "x".repeat(2001)}),
            "notes",
        ),
    ] {
        let response = post("/api/contacts", &account.token, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = json(response).await;
        assert_eq!(error["error"]["details"]["field"], field, "{body}");
    }
    let list = json(get("/api/contacts", &account.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn hostile_text_is_stored_verbatim() {
    let account = Account::new().await;
    let name = "Robert'); DROP TABLE contacts;-- <script>alert(1)</script> =1+1 Zoë 🚀";
    let response = post(
        "/api/contacts",
        &account.token,
        &json!({"name": name, "phone_number": "+442079460018", "company": "@SUM(A1)"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let id = json(response).await["id"].as_str().expect("id").to_owned();
    let contact = json(get(&format!("/api/contacts/{id}"), &account.token).await).await;
    assert_eq!(contact["name"], name);
    assert_eq!(contact["company"], "@SUM(A1)");
}

#[tokio::test]
async fn update_search_page_and_delete() {
    let account = Account::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let response = post(
            "/api/contacts",
            &account.token,
            &json!({"name": format!("Person {i}"), "phone_number": format!("+1415555{:04}", 2671 + i),
                    "company": if i % 2 == 0 { "Acme" } else { "Globex" }}),
        )
        .await;
        ids.push(json(response).await["id"].as_str().expect("id").to_owned());
    }
    let acme = json(get("/api/contacts?search=acme", &account.token).await).await;
    assert_eq!(acme["pagination"]["total"], 3);
    let by_phone = json(get("/api/contacts?search=5552672", &account.token).await).await;
    assert_eq!(by_phone["pagination"]["total"], 1);

    let first = json(get("/api/contacts?limit=2", &account.token).await).await;
    let cursor = first["pagination"]["next_cursor"].as_str().expect("more");
    let second = json(
        get(
            &format!("/api/contacts?limit=2&cursor={cursor}"),
            &account.token,
        )
        .await,
    )
    .await;
    let seen: Vec<&str> = first["data"]
        .as_array()
        .into_iter()
        .chain(second["data"].as_array())
        .flatten()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        ids.iter()
            .rev()
            .take(4)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        seen,
        "newest first"
    );

    // The list is tagged: unchanged, it answers 304; the update below changes it.
    let (status, etag) = poll("/api/contacts", &account.token, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        poll("/api/contacts", &account.token, Some(&etag)).await,
        (304, etag.clone())
    );

    // Partial update; the new number must not belong to another contact.
    let response = put(
        &format!("/contacts/{}", ids[0]),
        &account.token,
        &json!({"notes": "called twice", "company": ""}),
    )
    .await;
    let updated = json(response).await;
    assert_eq!(updated["notes"], "called twice");
    assert!(updated["company"].is_null());
    assert_eq!(updated["name"], "Person 0");
    let (status, changed) = poll("/api/contacts", &account.token, Some(&etag)).await;
    assert_eq!(status, 200, "an updated contact changes the page");
    assert_ne!(changed, etag);
    let response = put(
        &format!("/api/contacts/{}", ids[0]),
        &account.token,
        &json!({"phone_number": "+14155552672"}),
    )
    .await;
    assert_eq!(error_code(response, 409).await, "duplicate_contact");

    assert_eq!(
        delete(&format!("/api/contacts/{}", ids[1]), &account.token)
            .await
            .status(),
        204
    );
    let code = error_code(
        get(&format!("/api/contacts/{}", ids[1]), &account.token).await,
        404,
    )
    .await;
    assert_eq!(code, "not_found");
    // The deleted contact's number is free again.
    let response = post(
        "/api/contacts",
        &account.token,
        &json!({"name": "New owner", "phone_number": "+14155552672"}),
    )
    .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn another_tenants_contacts_are_not_found_anywhere() {
    let owner = Account::new().await;
    let other = Account::new().await;
    let response = post(
        "/api/contacts",
        &owner.token,
        &json!({"name": "Private", "phone_number": "+14155552671"}),
    )
    .await;
    let id = json(response).await["id"].as_str().expect("id").to_owned();
    for path in [format!("/api/contacts/{id}"), format!("/contacts/{id}")] {
        assert_eq!(
            error_code(get(&path, &other.token).await, 404).await,
            "not_found"
        );
        let response = put(&path, &other.token, &json!({"name": "stolen"})).await;
        assert_eq!(error_code(response, 404).await, "not_found");
        assert_eq!(
            error_code(delete(&path, &other.token).await, 404).await,
            "not_found"
        );
    }
    // The same number is the other tenant's own business.
    let response = post(
        "/api/contacts",
        &other.token,
        &json!({"name": "Theirs", "phone_number": "+14155552671"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    for account in [&owner, &other] {
        let list = json(get("/api/contacts", &account.token).await).await;
        assert_eq!(list["pagination"]["total"], 1);
        assert_eq!(list["data"][0]["user_id"], account.id.to_string());
    }
    let mine = json(get(&format!("/api/contacts/{id}"), &owner.token).await).await;
    assert_eq!(mine["name"], "Private");
}

#[tokio::test]
async fn a_change_of_one_field_is_not_refused_for_another_stored_one() {
    let account = Account::new().await;
    let created = post(
        "/api/contacts",
        &account.token,
        &json!({"name": "Ann", "phone_number": phone()}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = json(created).await["id"].as_str().expect("id").to_owned();
    // Stored before the rules refused such characters (a C1 control, a zero-width space).
    let stored = "O\u{92}Brien\u{200B}";
    db().await
        .execute(
            "UPDATE contacts SET name = $2 WHERE id = $1::text::uuid",
            &[&id, &stored],
        )
        .await
        .expect("stored");
    let path = format!("/api/contacts/{id}");
    let changed = put(&path, &account.token, &json!({"email": "ann@example.com"})).await;
    assert_eq!(changed.status(), 200);
    let changed = json(changed).await;
    assert_eq!(
        (&changed["name"], &changed["email"]),
        (&json!(stored), &json!("ann@example.com"))
    );
    for sneaky in ["Ann\u{202E}gro", "Ann\u{FEFF}", "Ann\u{2028}Lee"] {
        let refused = put(&path, &account.token, &json!({ "name": sneaky })).await;
        assert_eq!(
            error_code(refused, 400).await,
            "validation_error",
            "{sneaky:?}"
        );
    }
}
