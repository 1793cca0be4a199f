//! POST /api/contacts/upload with real files made here (rust_xlsxwriter, CSV text, the .xls
//! fixture): the report, duplicates against stored contacts, every file-level refusal with
//! nothing imported, and tenant isolation.

use rust_xlsxwriter::Workbook;
use serde_json::{json, Value};

use crate::support::*;

const BOUNDARY: &str = "----upload-test-boundary-7d1f";

/// A multipart body with one file part.
fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_to(path: &str, token: &str, file_name: &str, bytes: &[u8]) -> reqwest::Response {
    stack()
        .http
        .post(url(path))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart("file", file_name, bytes))
        .send()
        .await
        .expect("the API answers")
}

async fn upload(token: &str, file_name: &str, bytes: &[u8]) -> reqwest::Response {
    upload_to("/api/contacts/upload", token, file_name, bytes).await
}

/// An .xlsx whose first sheet holds `rows` (strings) starting at A1.
fn xlsx(rows: &[Vec<&str>]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).expect("cell");
        }
    }
    workbook.save_to_buffer().expect("xlsx")
}

async fn total_contacts(account: &Account) -> i64 {
    json(get("/api/contacts", &account.token).await).await["pagination"]["total"]
        .as_i64()
        .expect("total")
}

async fn contact_names(account: &Account) -> Vec<String> {
    let list = json(get("/api/contacts?limit=100", &account.token).await).await;
    let mut names: Vec<String> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_xlsx_is_imported_with_duplicates_and_invalid_rows_reported() {
    let account = Account::new().await;
    let response = post(
        "/api/contacts",
        &account.token,
        &json!({"name": "Already here", "phone_number": "+14155550100"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let file = xlsx(&[
        vec!["Contacts export"],
        vec![],
        vec!["Full Name", " MOBILE ", "E-mail", "Company", "Notes"],
        vec![
            "Ada Lovelace",
            "+44 20 7946 0018",
            "ada@example.com",
            "Analytical",
            "first",
        ],
        vec!["Zoë 李 🚀", "(415) 555-2671", "", "", ""],
        vec!["Same as stored", "415-555-0100", "", "", ""],
        vec!["Same number again", "+1 415 555 2671", "", "", ""],
        vec!["Bad number", "12", "", "", ""],
        vec![
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+14155550101",
            "",
            "@SUM(A1)",
            "-2+3",
        ],
    ]);
    let response = upload(&account.token, "contacts.xlsx", &file).await;
    assert_eq!(response.status(), 200);
    let report = json(response).await;
    assert_eq!(report["total_rows"], 6, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(
        report["duplicates"],
        json!([{"row": 6, "phone": "+14155550100"}, {"row": 7, "phone": "+14155552671"}])
    );
    assert_eq!(report["invalid"][0]["row"], 8);
    assert_eq!(report["invalid"][0]["field"], "phone_number");
    assert_eq!(
        contact_names(&account).await,
        [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "Ada Lovelace",
            "Already here",
            "Zoë 李 🚀"
        ]
    );
    let list = json(get("/api/contacts?search=evil", &account.token).await).await;
    assert_eq!(
        list["data"][0]["company"], "@SUM(A1)",
        "formula-looking text is kept as text"
    );
    assert_eq!(list["data"][0]["notes"], "-2+3");

    // The same file again: everything is a duplicate now, nothing is created twice.
    let again = json(upload(&account.token, "contacts.xlsx", &file).await).await;
    assert_eq!(again["created"], 0);
    assert_eq!(again["duplicates"].as_array().expect("list").len(), 5);
    assert_eq!(total_contacts(&account).await, 4);
}

#[tokio::test]
async fn csv_and_xls_files_through_the_alias() {
    let account = Account::new().await;
    let csv =
        "\u{feff}Name;Phone;Email\n\"Lin, Mei\";+14155550123;mei@example.com\nOla;+4520123456;\n";
    let response = upload_to(
        "/contacts/upload",
        &account.token,
        "list.csv",
        csv.as_bytes(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report = json(response).await;
    assert_eq!(
        (report["total_rows"].as_i64(), report["created"].as_i64()),
        (Some(2), Some(2))
    );

    let xls = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tests/fixtures/contacts.xls"
    ))
    .expect("the .xls fixture");
    let report = json(upload(&account.token, "legacy.xls", &xls).await).await;
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(total_contacts(&account).await, 5);
}

#[tokio::test]
async fn file_level_problems_import_nothing() {
    let account = Account::new().await;
    let header = ["Name", "Phone"];
    let mut too_many: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for i in 0..1001 {
        too_many.push(vec![format!("Person {i}"), format!("+1415555{:04}", i)]);
    }
    let too_many: Vec<Vec<&str>> = too_many
        .iter()
        .map(|row| row.iter().map(String::as_str).collect())
        .collect();
    let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    let mut corrupt = b"PK\x03\x04".to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 300));
    let no_header = xlsx(&[vec!["Ada", "+14155552671"], vec!["Bob", "+14155552672"]]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("big.xlsx", xlsx(&too_many), 413, "too_many_rows"),
        ("photo.xlsx", png.to_vec(), 415, "unsupported_file_type"),
        ("broken.xlsx", corrupt, 400, "corrupt_file"),
        (
            "notes.txt",
            b"Name,Phone\nAda,+14155552671\n".to_vec(),
            415,
            "unsupported_file_type",
        ),
        (
            "plain.xlsx",
            b"Name,Phone\nAda,+14155552671\n".to_vec(),
            415,
            "unsupported_file_type",
        ),
        ("headless.xlsx", no_header, 400, "missing_header"),
        ("empty.csv", Vec::new(), 400, "empty_file"),
        ("blank.xlsx", xlsx(&[]), 400, "empty_file"),
    ];
    for (name, bytes, status, code) in cases {
        let response = upload(&account.token, name, &bytes).await;
        assert_eq!(error_code(response, status).await, code, "{name}");
    }
    assert_eq!(total_contacts(&account).await, 0);
}

#[tokio::test]
async fn oversized_and_malformed_uploads_are_refused() {
    let account = Account::new().await;
    let huge = vec![b'a'; 4 * 1024 * 1024 + 1];
    let response = upload(&account.token, "huge.csv", &huge).await;
    assert_eq!(error_code(response, 413).await, "payload_too_large");

    let response = post(
        "/api/contacts/upload",
        &account.token,
        &json!({"file": "x"}),
    )
    .await;
    assert_eq!(error_code(response, 415).await, "unsupported_media_type");

    let response = stack()
        .http
        .post(url("/api/contacts/upload"))
        .bearer_auth(&account.token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n"))
        .send()
        .await
        .expect("answers");
    assert_eq!(error_code(response, 400).await, "validation_error");

    let response = stack()
        .http
        .post(url("/api/contacts/upload"))
        .bearer_auth(&account.token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nName,Phone\r\n"))
        .send()
        .await
        .expect("answers");
    assert!(response.status().is_client_error(), "{}", response.status());

    let response = stack()
        .http
        .post(url("/api/contacts/upload"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(
            "file",
            "a.csv",
            b"Name,Phone\nAda,+14155552671\n",
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(error_code(response, 401).await, "missing_token");
    assert_eq!(total_contacts(&account).await, 0);
}

#[tokio::test]
async fn uploads_never_see_another_tenants_contacts() {
    let owner = Account::new().await;
    let other = Account::new().await;
    post(
        "/api/contacts",
        &other.token,
        &json!({"name": "Theirs", "phone_number": "+14155550999"}),
    )
    .await;
    let file = xlsx(&[vec!["Name", "Phone"], vec!["Mine", "+14155550999"]]);
    let report: Value = json(upload(&owner.token, "c.xlsx", &file).await).await;
    assert_eq!(
        report["created"], 1,
        "not a duplicate of another tenant's contact"
    );
    assert_eq!(contact_names(&owner).await, ["Mine"]);
    assert_eq!(contact_names(&other).await, ["Theirs"]);
}

#[tokio::test]
async fn two_uploads_at_once_of_the_same_numbers_in_opposite_orders_both_answer() {
    let account = Account::new().await;
    let rows: Vec<String> = (0..1000)
        .map(|i| format!("Person {i},+1415555{i:04}"))
        .collect();
    let file = |rows: &mut dyn Iterator<Item = &String>| {
        let mut csv = String::from("Name,Phone\n");
        for row in rows {
            csv.push_str(row);
            csv.push('\n');
        }
        csv.into_bytes()
    };
    let (forward, backward) = (file(&mut rows.iter()), file(&mut rows.iter().rev()));
    for _ in 0..3 {
        let (first, second) = tokio::join!(
            upload(&account.token, "a.csv", &forward),
            upload(&account.token, "b.csv", &backward)
        );
        let (first, second) = (json(first).await, json(second).await);
        let created = first["created"].as_u64().zip(second["created"].as_u64());
        let duplicates = [&first, &second]
            .map(|report| report["duplicates"].as_array().map_or(0, Vec::len))
            .iter()
            .sum::<usize>();
        assert!(
            matches!(created, Some((a, b)) if a + b <= 1000 && duplicates as u64 == 2000 - a - b),
            "{first} {second}"
        );
    }
    assert_eq!(total_contacts(&account).await, 1000);
}
