mod files;

use axum::http::StatusCode;
use phonenumber::country;
use proptest::prelude::*;

use self::files::{ods, row, s, xlsx, xlsx_sheets, Sheet, V};
use super::*;

const XLS_FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/contacts.xls"
));

fn limits() -> ImportLimits {
    ImportLimits {
        max_rows: 1000,
        max_bytes: 5 << 20,
        default_region: country::Id::US,
    }
}

fn parse_ok(file_name: &str, bytes: &[u8]) -> ParsedFile {
    let parsed = parse(file_name, bytes, &limits()).unwrap_or_else(|e| panic!("{file_name}: {e}"));
    assert_eq!(
        parsed.total_rows,
        parsed.contacts.len() + parsed.duplicates.len() + parsed.invalid.len(),
        "every counted row is reported once"
    );
    parsed
}

fn parse_err(file_name: &str, bytes: &[u8]) -> AppError {
    match parse(file_name, bytes, &limits()) {
        Ok(parsed) => panic!("{file_name}: expected an error, got {parsed:?}"),
        Err(err) => err,
    }
}

#[track_caller]
fn assert_error(err: &AppError, status: StatusCode, code: &str) {
    assert_eq!((err.status, err.code), (status, code), "{err}");
}

fn contact(row: usize, name: &str, phone: &str) -> ImportedContact {
    ImportedContact {
        row,
        name: name.into(),
        phone_number: phone.into(),
        email: None,
        company: None,
        notes: None,
    }
}

fn names(parsed: &ParsedFile) -> Vec<&str> {
    parsed.contacts.iter().map(|c| c.name.as_str()).collect()
}

fn invalid(parsed: &ParsedFile) -> Vec<(usize, &str)> {
    parsed.invalid.iter().map(|i| (i.row, i.field)).collect()
}

// ---------- happy paths, one per format ----------

#[test]
fn csv_happy_path() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone,Email,Company,Notes\n\
          Ada Lovelace,+1 415-555-2671,ada@example.com,Engines Ltd,likes math\n\
          Grace Hopper,(415) 555-2672,,,\n",
    );
    assert_eq!(parsed.total_rows, 2);
    assert_eq!(
        parsed.contacts,
        [
            ImportedContact {
                email: Some("ada@example.com".into()),
                company: Some("Engines Ltd".into()),
                notes: Some("likes math".into()),
                ..contact(2, "Ada Lovelace", "+14155552671")
            },
            contact(3, "Grace Hopper", "+14155552672"),
        ]
    );
    assert!(parsed.duplicates.is_empty() && parsed.invalid.is_empty());
}

#[test]
fn xlsx_happy_path() {
    let bytes = xlsx(vec![
        vec![s("Customer list")],
        vec![],
        row(&["Name", "Phone", "E-mail", "Company", "Notes"]),
        vec![
            s("Zoë 🎉 Ünicode"),
            s("+44 20 7946 0018"),
            s("zoe@example.com"),
            s("Acme"),
            V::D(2024, 5, 1),
        ],
        vec![s("李小龙"), V::N(4155552671.0)],
        vec![s("محمد"), V::N(14155552672.0)],
    ]);
    let parsed = parse_ok("contacts.xlsx", &bytes);
    assert_eq!(
        parsed.contacts,
        [
            ImportedContact {
                email: Some("zoe@example.com".into()),
                company: Some("Acme".into()),
                notes: Some("2024-05-01".into()),
                ..contact(4, "Zoë 🎉 Ünicode", "+442079460018")
            },
            contact(5, "李小龙", "+14155552671"),
            contact(6, "محمد", "+14155552672"),
        ]
    );
}

#[test]
fn ods_happy_path() {
    let bytes = ods(vec![
        row(&["Full Name", "Mobile", "Email"]),
        vec![s("Zoë 🎉"), V::N(4155552671.0), s("zoe@example.com")],
        vec![s("Grace"), s("415.555.2672")],
    ]);
    let parsed = parse_ok("contacts.ods", &bytes);
    assert_eq!(
        parsed.contacts,
        [
            ImportedContact {
                email: Some("zoe@example.com".into()),
                ..contact(2, "Zoë 🎉", "+14155552671")
            },
            contact(3, "Grace", "+14155552672"),
        ]
    );
}

/// See scripts/fixtures/make_xls.py for the file's content.
#[test]
fn xls_fixture() {
    let parsed = parse_ok("contacts.xls", XLS_FIXTURE);
    assert_eq!(parsed.total_rows, 6);
    assert_eq!(
        parsed.contacts,
        [
            ImportedContact {
                email: Some("ada@example.com".into()),
                company: Some("Analytical Engines".into()),
                notes: Some("first".into()),
                ..contact(4, "Ada Lovelace", "+442079460018")
            },
            contact(5, "Zoë Ünicode 李", "+14155552671"),
            ImportedContact {
                company: Some("Navy".into()),
                ..contact(6, "Grace Hopper", "+14155552672")
            },
        ]
    );
    assert_eq!(invalid(&parsed), [(7, "phone_number"), (9, "phone_number")]);
    assert!(
        parsed.invalid[1].reason.contains("required"),
        "{:?}",
        parsed.invalid
    );
    assert_eq!(
        parsed.duplicates,
        [DuplicateRow {
            row: 8,
            phone: "+14155552671".into()
        }]
    );
}

// ---------- format detection ----------

#[test]
fn workbook_content_wins_over_a_workbook_or_csv_extension() {
    let bytes = xlsx(vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])]);
    for name in [
        "contacts.xls",
        "contacts.ods",
        "contacts.csv",
        "CONTACTS.XLSX",
    ] {
        assert_eq!(names(&parse_ok(name, &bytes)), ["Ada"], "{name}");
    }
    let bytes = ods(vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])]);
    assert_eq!(names(&parse_ok("contacts.xlsx", &bytes)), ["Ada"]);
    assert_eq!(names(&parse_ok("contacts.csv", XLS_FIXTURE)).len(), 3);
}

#[test]
fn unknown_extensions_are_unsupported() {
    let csv = b"Name,Phone\nAda,4155552671\n";
    for name in [
        "contacts.txt",
        "contacts",
        "contacts.pdf",
        "contacts.xlsb",
        "contacts.csv.exe",
    ] {
        let err = parse_err(name, csv);
        assert_error(
            &err,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        );
        assert_eq!(
            err.details.as_ref().unwrap()["accepted"],
            serde_json::json!(["csv", "xlsx", "xls", "ods"])
        );
    }
}

#[test]
fn a_png_is_unsupported_whatever_its_name() {
    for name in ["photo.xlsx", "photo.csv", "photo.xls", "photo.ods"] {
        let err = parse_err(name, files::PNG);
        assert_error(
            &err,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        );
    }
}

#[test]
fn plain_text_named_as_a_workbook_is_unsupported() {
    for name in ["contacts.xlsx", "contacts.xls", "contacts.ods"] {
        let err = parse_err(name, b"Name,Phone\nAda,4155552671\n");
        assert_error(
            &err,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        );
        assert!(err.message.contains(".csv"), "{err}");
    }
    let html = b"<html><body><table><tr><td>Name</td><td>Phone</td></tr></table></body></html>";
    let err = parse_err("export.xls", html);
    assert_error(
        &err,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_file_type",
    );
}

#[test]
fn other_zip_archives_are_unsupported() {
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "word",
            files::zip(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("word/document.xml", b"<w/>"),
            ]),
        ),
        (
            "xlsb",
            files::zip(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("xl/workbook.bin", b"\0"),
            ]),
        ),
        (
            "odt",
            files::zip(&[("mimetype", b"application/vnd.oasis.opendocument.text")]),
        ),
        ("plain zip", files::zip(&[("readme.txt", b"hello")])),
    ];
    for (what, bytes) in cases {
        let err = parse_err("contacts.xlsx", &bytes);
        assert_error(
            &err,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        );
        assert!(!err.message.is_empty(), "{what}");
    }
}

#[test]
fn damaged_workbooks_are_corrupt() {
    let good = xlsx(vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])]);
    let truncated = &good[..good.len() / 2];
    let garbage_zip = [b"PK\x03\x04".as_slice(), &[0x42; 200]].concat();
    let missing_workbook = files::zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("xl/styles.xml", b"<x/>"),
    ]);
    let bad_sheet_xml = files::rewrite_entries(&good, |name, xml| {
        if name == "xl/worksheets/sheet1.xml" {
            xml.replace("</sheetData>", "<row><c r=\"A9\"")
        } else {
            xml
        }
    });
    let garbage_ole = [b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".as_slice(), &[0x42; 600]].concat();
    let ods_without_content = files::zip(&[
        ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
        ("META-INF/manifest.xml", b"<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"/>"),
    ]);
    for (name, bytes) in [
        ("truncated.xlsx", truncated),
        ("garbage.xlsx", &garbage_zip),
        ("missing.xlsx", &missing_workbook),
        ("bad-xml.xlsx", &bad_sheet_xml),
        ("garbage.xls", &garbage_ole),
        ("no-content.ods", &ods_without_content),
    ] {
        let err = parse_err(name, bytes);
        assert_error(&err, StatusCode::BAD_REQUEST, "corrupt_file");
        assert!(
            err.details.as_ref().unwrap()["reason"].is_string(),
            "{name}"
        );
    }
}

#[test]
fn zip_bombs_are_refused_before_unpacking() {
    let bomb = files::zip_bomb(64 << 20);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let err = parse_err("bomb.xlsx", &bomb);
    assert_error(&err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(err.details.as_ref().unwrap()["found"], 64 << 20);
}

// ---------- empty files and headers ----------

#[test]
fn empty_files_and_sheets() {
    let empty_xlsx = xlsx(vec![]);
    let only_hidden_data = xlsx_sheets(vec![
        Sheet {
            name: "Visible",
            hidden: false,
            rows: vec![],
        },
        Sheet {
            name: "Secret",
            hidden: true,
            rows: vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])],
        },
    ]);
    let empty_ods = ods(vec![]);
    let cases: [(&str, &[u8]); 8] = [
        ("empty.csv", b""),
        ("blank.csv", b" \r\n\n\t \n"),
        ("bom.csv", b"\xEF\xBB\xBF"),
        ("commas.csv", b",,,\n,,\n"),
        ("empty.xlsx", b""),
        ("sheet.xlsx", &empty_xlsx),
        ("hidden.xlsx", &only_hidden_data),
        ("sheet.ods", &empty_ods),
    ];
    for (name, bytes) in cases {
        assert_error(
            &parse_err(name, bytes),
            StatusCode::BAD_REQUEST,
            "empty_file",
        );
    }
    let header_only = parse_err("contacts.csv", b"Name,Phone\n\n,\n");
    assert_error(&header_only, StatusCode::BAD_REQUEST, "empty_file");
    assert!(header_only.message.contains("header"), "{header_only}");
}

#[test]
fn missing_header_names_the_expected_columns() {
    for bytes in [
        b"Ada,4155552671\nGrace,4155552672\n".as_slice(),
        b"Name,Email\nAda,ada@example.com\n",
        b"Phone,Email\n4155552671,ada@example.com\n",
    ] {
        let err = parse_err("contacts.csv", bytes);
        assert_error(&err, StatusCode::BAD_REQUEST, "missing_header");
        let details = err.details.expect("details");
        assert_eq!(
            details["required"],
            serde_json::json!(["name", "phone_number"])
        );
        assert!(details["accepted_headers"]["phone_number"]
            .as_array()
            .unwrap()
            .contains(&"mobile".into()));
    }
}

#[test]
fn header_synonyms_case_spacing_and_punctuation() {
    for header in [
        "name,phone",
        "  FULL_NAME  ,  Phone Number ",
        "Contact Name;Mobile Phone",
        "Customer Name\tTel.",
        "Display-Name,Telephone",
        "Name,Cell",
        "NAME,PHONE #",
        "Full name,Phone no.",
        "name,mobile_number",
    ] {
        let sep = if header.contains(';') {
            ";"
        } else if header.contains('\t') {
            "\t"
        } else {
            ","
        };
        let csv = format!("{header}\nAda{sep}4155552671\n");
        let parsed = parse_ok("contacts.csv", csv.as_bytes());
        assert_eq!(
            parsed.contacts,
            [contact(2, "Ada", "+14155552671")],
            "{header:?}"
        );
    }
}

#[test]
fn optional_column_synonyms() {
    let parsed = parse_ok(
        "contacts.csv",
        "Name,Telephone,E-mail Address,Organisation,Comments\nAda,4155552671,a@b.co,Org,Hi\n"
            .as_bytes(),
    );
    let ada = &parsed.contacts[0];
    assert_eq!(
        (
            ada.email.as_deref(),
            ada.company.as_deref(),
            ada.notes.as_deref()
        ),
        (Some("a@b.co"), Some("Org"), Some("Hi"))
    );
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone,Mail,Business,Note\nAda,4155552671,a@b.co,Biz,Hey\n",
    );
    let ada = &parsed.contacts[0];
    assert_eq!(
        (
            ada.email.as_deref(),
            ada.company.as_deref(),
            ada.notes.as_deref()
        ),
        (Some("a@b.co"), Some("Biz"), Some("Hey"))
    );
}

#[test]
fn first_and_last_name_are_joined() {
    let parsed = parse_ok(
        "outlook.csv",
        b"First Name,Last Name,Mobile Phone,Business Phone\n\
          Ada,Lovelace,4155552671,4155550000\n\
          ,Hopper,4155552672,\n\
          Grace,,4155552673,\n\
          ,,4155552674,\n",
    );
    assert_eq!(names(&parsed), ["Ada Lovelace", "Hopper", "Grace"]);
    assert_eq!(
        parsed.contacts[0].phone_number, "+14155552671",
        "mobile beats business"
    );
    assert_eq!(invalid(&parsed), [(5, "name")]);
}

#[test]
fn a_name_column_wins_over_first_and_last_name_when_filled() {
    let parsed = parse_ok(
        "contacts.csv",
        b"First Name,Last Name,Name,Phone\nAda,Lovelace,Countess,4155552671\nGrace,Hopper,,4155552672\n",
    );
    assert_eq!(names(&parsed), ["Countess", "Grace Hopper"]);
}

#[test]
fn the_best_spelling_wins_then_the_leftmost_column() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Home Phone,Name,Phone,Mobile\n4155550001,Ada,4155552671,4155550002\n",
    );
    assert_eq!(parsed.contacts[0].phone_number, "+14155552671");
}

#[test]
fn header_below_title_rows_and_blank_rows() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Contacts export\nGenerated 2024-05-01\n\n,,\nName,Phone\nAda,4155552671\n",
    );
    assert_eq!(parsed.contacts, [contact(6, "Ada", "+14155552671")]);
    let bytes = xlsx(vec![
        vec![],
        vec![],
        vec![V::Blank, s("My contacts")],
        vec![],
        vec![V::Blank, s("Name"), s("Phone")],
        vec![V::Blank, s("Ada"), s("4155552671")],
    ]);
    assert_eq!(
        parse_ok("contacts.xlsx", &bytes).contacts,
        [contact(6, "Ada", "+14155552671")]
    );
}

#[test]
fn header_is_searched_in_the_first_ten_non_blank_rows_only() {
    let titles = |n: usize| {
        (1..=n)
            .map(|i| format!("title {i}\n\n"))
            .collect::<String>()
    };
    let found = format!(
        "{}Name,Phone\nAda,4155552671\n",
        titles(HEADER_SEARCH_ROWS - 1)
    );
    assert_eq!(names(&parse_ok("contacts.csv", found.as_bytes())), ["Ada"]);
    let too_deep = format!("{}Name,Phone\nAda,4155552671\n", titles(HEADER_SEARCH_ROWS));
    assert_error(
        &parse_err("contacts.csv", too_deep.as_bytes()),
        StatusCode::BAD_REQUEST,
        "missing_header",
    );
}

// ---------- workbooks: sheets, numbers, formulas ----------

#[test]
fn first_visible_non_empty_worksheet_is_read() {
    let bytes = xlsx_sheets(vec![
        Sheet {
            name: "Secret",
            hidden: true,
            rows: vec![row(&["Name", "Phone"]), row(&["Hidden", "4155550000"])],
        },
        Sheet {
            name: "Empty",
            hidden: false,
            rows: vec![],
        },
        Sheet {
            name: "Contacts",
            hidden: false,
            rows: vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])],
        },
        Sheet {
            name: "Later",
            hidden: false,
            rows: vec![row(&["Name", "Phone"]), row(&["Later", "4155550001"])],
        },
    ]);
    assert_eq!(names(&parse_ok("contacts.xlsx", &bytes)), ["Ada"]);
}

#[test]
fn numeric_phone_cells_become_digits() {
    let bytes = xlsx(vec![
        row(&["Name", "Phone"]),
        vec![s("national"), V::N(4155552671.0)],
        vec![s("with country code"), V::N(14155552672.0)],
        vec![s("plus dropped by Excel"), V::N(442079460018.0)],
        vec![s("fraction"), V::N(4155552671.5)],
        vec![s("negative"), V::N(-4155552671.0)],
        vec![s("too short"), V::N(12345.0)],
    ]);
    let parsed = parse_ok("contacts.xlsx", &bytes);
    let phones: Vec<&str> = parsed
        .contacts
        .iter()
        .map(|c| c.phone_number.as_str())
        .collect();
    assert_eq!(phones, ["+14155552671", "+14155552672", "+442079460018"]);
    assert_eq!(
        invalid(&parsed),
        [
            (5, "phone_number"),
            (6, "phone_number"),
            (7, "phone_number")
        ]
    );
    assert!(
        parsed.invalid[2].reason.contains("\"12345\""),
        "{:?}",
        parsed.invalid[2]
    );
}

#[test]
fn numbers_exported_as_text_become_digits() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone\n\
          a,4155552671.0\n\
          b,1.4155552672E10\n\
          c,1.4155552673e+10\n\
          d,'+14155552674\n\
          e,1.41556E+10\n",
    );
    let phones: Vec<&str> = parsed
        .contacts
        .iter()
        .map(|c| c.phone_number.as_str())
        .collect();
    assert_eq!(
        phones,
        [
            "+14155552671",
            "+14155552672",
            "+14155552673",
            "+14155552674"
        ]
    );
    assert_eq!(invalid(&parsed), [(6, "phone_number")]);
    assert!(
        parsed.invalid[0].reason.contains("scientific notation"),
        "{:?}",
        parsed.invalid
    );
}

#[test]
fn non_phone_numbers_are_read_as_plain_text() {
    let bytes = xlsx(vec![
        row(&["Name", "Phone", "Company", "Notes"]),
        vec![V::N(42.0), s("4155552671"), V::N(3.5), V::N(1e20)],
    ]);
    let ada = &parse_ok("contacts.xlsx", &bytes).contacts[0];
    assert_eq!(ada.name, "42");
    assert_eq!(ada.company.as_deref(), Some("3.5"));
    assert_eq!(ada.notes.as_deref(), Some("100000000000000000000"));
}

#[test]
fn formula_cells_use_their_computed_value() {
    let rows = vec![
        row(&["Name", "Phone", "Company"]),
        vec![
            V::F("=\"Ada \"&\"Lovelace\"", Some("Ada Lovelace")),
            s("4155552671"),
            V::F("=UPPER(\"acme\")", Some("ACME")),
        ],
        vec![s("Grace"), V::F("=\"415555\"&\"2672\"", Some("4155552672"))],
    ];
    for (name, bytes) in [
        ("contacts.xlsx", xlsx(rows.clone())),
        ("contacts.ods", ods(rows)),
    ] {
        let parsed = parse_ok(name, &bytes);
        assert_eq!(names(&parsed), ["Ada Lovelace", "Grace"], "{name}");
        assert_eq!(
            parsed.contacts[0].company.as_deref(),
            Some("ACME"),
            "{name}"
        );
        assert_eq!(parsed.contacts[1].phone_number, "+14155552672", "{name}");
    }
}

#[test]
fn formula_cells_without_a_computed_value_make_the_row_invalid() {
    let rows = vec![
        row(&["Name", "Phone", "Email"]),
        vec![V::F("=A5", None), s("4155552671")],
        vec![s("Grace"), V::F("=B5", None)],
        vec![s("Alan"), s("4155552673"), V::F("=C5", None)],
        vec![s("Edsger"), s("4155552674")],
    ];
    for (name, bytes) in [
        ("contacts.xlsx", xlsx(rows.clone())),
        ("contacts.ods", ods(rows)),
    ] {
        let parsed = parse_ok(name, &bytes);
        assert_eq!(names(&parsed), ["Edsger"], "{name}");
        assert_eq!(
            invalid(&parsed),
            [(2, "name"), (3, "phone_number"), (4, "email")],
            "{name}"
        );
        assert!(
            parsed.invalid.iter().all(|i| i.reason.contains("formula")),
            "{:?}",
            parsed.invalid
        );
    }
}

#[test]
fn error_cells_make_the_row_invalid() {
    let bytes = xlsx(vec![
        row(&["Name", "Phone"]),
        vec![s("Ada"), V::F("=NA()", Some("#N/A"))],
    ]);
    let parsed = parse_ok("contacts.xlsx", &bytes);
    assert_eq!(invalid(&parsed), [(2, "phone_number")]);
    assert!(
        parsed.invalid[0].reason.contains("#N/A"),
        "{:?}",
        parsed.invalid
    );
}

#[test]
fn text_that_looks_like_a_formula_is_kept_verbatim() {
    let evil = [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+SUM(1,2)",
        "-2+3",
        "@cmd|' /C calc'!A0",
    ];
    let csv = format!(
        "Name,Phone,Company,Notes\n\"{}\",4155552671,\"{}\",{}\n{},4155552672,,\n",
        evil[0].replace('"', "\"\""),
        evil[1],
        evil[2],
        evil[3]
    );
    let xlsx_rows = vec![
        row(&["Name", "Phone", "Company", "Notes"]),
        vec![s(evil[0]), s("4155552671"), s(evil[1]), s(evil[2])],
        vec![s(evil[3]), s("4155552672")],
    ];
    for (name, bytes) in [("c.csv", csv.into_bytes()), ("c.xlsx", xlsx(xlsx_rows))] {
        let parsed = parse_ok(name, &bytes);
        assert_eq!(names(&parsed), [evil[0], evil[3]], "{name}");
        assert_eq!(
            parsed.contacts[0].company.as_deref(),
            Some(evil[1]),
            "{name}"
        );
        assert_eq!(parsed.contacts[0].notes.as_deref(), Some(evil[2]), "{name}");
    }
}

// ---------- fields ----------

#[test]
fn invalid_phones_are_reported_per_row() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone\nA,12345\nB,call me\nC,\nD,+1 555\nE,415-555-2671\n",
    );
    assert_eq!(names(&parsed), ["E"]);
    assert_eq!(
        invalid(&parsed),
        [
            (2, "phone_number"),
            (3, "phone_number"),
            (4, "phone_number"),
            (5, "phone_number")
        ]
    );
    assert!(
        parsed.invalid[0].reason.contains("\"12345\""),
        "{:?}",
        parsed.invalid
    );
    assert!(
        parsed.invalid[0].reason.contains("US"),
        "{:?}",
        parsed.invalid
    );
    assert!(
        parsed.invalid[2].reason.contains("required"),
        "{:?}",
        parsed.invalid
    );
}

#[test]
fn default_region_reads_national_numbers() {
    let limits = ImportLimits {
        default_region: country::Id::GB,
        ..limits()
    };
    let parsed = parse(
        "c.csv",
        b"Name,Phone\nA,020 7946 0018\nB,+1 415 555 2671\n",
        &limits,
    )
    .unwrap();
    let phones: Vec<&str> = parsed
        .contacts
        .iter()
        .map(|c| c.phone_number.as_str())
        .collect();
    assert_eq!(phones, ["+442079460018", "+14155552671"]);
}

#[test]
fn duplicates_in_the_file_keep_the_first_row() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone\n\
          Ada,+1 (415) 555-2671\n\
          Bad,nope\n\
          Ada again,415.555.2671\n\
          Grace,4155552672\n\
          Ada thrice,14155552671\n",
    );
    assert_eq!(names(&parsed), ["Ada", "Grace"]);
    assert_eq!(
        parsed.duplicates,
        [
            DuplicateRow {
                row: 4,
                phone: "+14155552671".into()
            },
            DuplicateRow {
                row: 6,
                phone: "+14155552671".into()
            },
        ]
    );
    assert_eq!(invalid(&parsed), [(3, "phone_number")]);
}

#[test]
fn an_invalid_row_does_not_claim_its_phone_number() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone,Email\nAda,4155552671,not-an-email\nAda,4155552671,ada@example.com\n",
    );
    assert_eq!(invalid(&parsed), [(2, "email")]);
    assert_eq!(parsed.contacts[0].row, 3);
    assert!(parsed.duplicates.is_empty());
}

#[test]
fn email_rules() {
    let parsed = parse_ok(
        "contacts.csv",
        b"Name,Phone,Email\n\
          a,4155550001,ada@example.com\n\
          b,4155550002,  Ada.L+tag@Sub.Example.org  \n\
          c,4155550003,ada@localhost\n\
          d,4155550004,ada at example.com\n\
          e,4155550005,@example.com\n\
          f,4155550006,a@b@example.com\n",
    );
    assert_eq!(names(&parsed), ["a", "b"]);
    assert_eq!(
        parsed.contacts[1].email.as_deref(),
        Some("Ada.L+tag@Sub.Example.org")
    );
    assert_eq!(
        invalid(&parsed),
        [(4, "email"), (5, "email"), (6, "email"), (7, "email")]
    );
    let long = format!(
        "Name,Phone,Email\na,4155550001,{}@example.com\n",
        "x".repeat(250)
    );
    assert_eq!(invalid(&parse_ok("c.csv", long.as_bytes())), [(2, "email")]);
}

#[test]
fn length_limits_count_characters() {
    let emoji_name = "🎉".repeat(200);
    let csv = format!(
        "Name,Phone,Company,Notes\n\
         {emoji_name},4155550001,{},{}\n\
         {}x,4155550002,,\n\
         b,4155550003,{},\n\
         c,4155550004,,{}\n",
        "é".repeat(200),
        "ü".repeat(2000),
        emoji_name,
        "c".repeat(201),
        "n".repeat(2001),
    );
    let parsed = parse_ok("c.csv", csv.as_bytes());
    assert_eq!(names(&parsed), [emoji_name.as_str()]);
    assert_eq!(
        invalid(&parsed),
        [(3, "name"), (4, "company"), (5, "notes")]
    );
    assert!(
        parsed.invalid[0].reason.contains("201"),
        "{:?}",
        parsed.invalid
    );
}

#[test]
fn giant_cells_are_not_copied() {
    let bytes = xlsx(vec![
        row(&["Name", "Phone", "Notes"]),
        vec![s("Ada"), s("4155552671"), s(&"x".repeat(20_000))],
    ]);
    let parsed = parse_ok("c.xlsx", &bytes);
    assert_eq!(invalid(&parsed), [(2, "notes")]);
}

#[test]
fn control_characters_are_removed_and_whitespace_tidied() {
    let csv = "Name,Phone,Company,Notes\n\
               \"Ada\u{0}  Love\u{7}lace\",\"415\u{0}5552671\",\" Acme\tInc \",\"line 1\r\nline 2\u{1b}\twith tab\r\"\n\
               \"Grace\nHopper\",4155552672,\u{0},\u{0}\n";
    let parsed = parse_ok("c.csv", csv.as_bytes());
    assert_eq!(
        parsed.contacts[0],
        ImportedContact {
            company: Some("Acme Inc".into()),
            notes: Some("line 1\nline 2\twith tab".into()),
            ..contact(2, "Ada Lovelace", "+14155552671")
        }
    );
    assert_eq!(
        parsed.contacts[1],
        contact(3, "Grace Hopper", "+14155552672")
    );
    let bytes = xlsx(vec![
        row(&["Name", "Phone"]),
        row(&["Zo\u{0}ë\u{1f}\u{85}", "4155552671"]),
        row(&["O\u{92}Brien\u{9f}", "4155552672"]),
    ]);
    assert_eq!(names(&parse_ok("c.xlsx", &bytes)), ["Zoë", "OBrien"]);
    // Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined: they decode as C1 controls.
    let windows_1252 = b"Name;Phone\r\nJos\xe9\x81\x90 M\xfcller;4155552671\r\n";
    assert_eq!(names(&parse_ok("c.csv", windows_1252)), ["José Müller"]);
}

// ---------- CSV specifics ----------

#[test]
fn csv_encodings() {
    let expected = [contact(2, "José Müller", "+14155552671")];
    let utf8 = "Name,Phone\nJosé Müller,4155552671\n";
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), utf8.as_bytes()].concat();
    let windows_1252 = b"Name;Phone\r\nJos\xe9 M\xfcller;4155552671\r\n".to_vec();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "Name\tPhone\r\nJosé Müller\t4155552671\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    for (what, bytes) in [
        ("utf-8", utf8.as_bytes().to_vec()),
        ("bom", with_bom),
        ("cp1252", windows_1252),
        ("utf-16", utf16),
    ] {
        assert_eq!(parse_ok("c.csv", &bytes).contacts, expected, "{what}");
    }
}

#[test]
fn csv_delimiters_are_sniffed() {
    for csv in [
        "Name;Phone;Company\n\"Lovelace, Ada\";4155552671;Engines, Ltd\n",
        "Name\tPhone\tCompany\nLovelace, Ada\t4155552671\tEngines, Ltd\n",
        "Name,Phone,Company\n\"Lovelace, Ada\",4155552671,\"Engines, Ltd\"\n",
    ] {
        let parsed = parse_ok("c.csv", csv.as_bytes());
        assert_eq!(names(&parsed), ["Lovelace, Ada"], "{csv:?}");
        assert_eq!(
            parsed.contacts[0].company.as_deref(),
            Some("Engines, Ltd"),
            "{csv:?}"
        );
    }
}

#[test]
fn csv_quoted_newlines_and_blank_lines_keep_spreadsheet_row_numbers() {
    let parsed = parse_ok(
        "c.csv",
        b"Name,Phone,Notes\r\n\
          Ada,4155552671,\"two\r\nlines\"\r\n\
          \r\n\
          Grace,4155552672,\"three\nshort\nlines\"\n\
          Bad,123,\n",
    );
    assert_eq!(parsed.contacts[0].notes.as_deref(), Some("two\nlines"));
    let rows: Vec<usize> = parsed.contacts.iter().map(|c| c.row).collect();
    assert_eq!(rows, [2, 4]);
    assert_eq!(invalid(&parsed), [(5, "phone_number")]);
}

#[test]
fn csv_ragged_rows_are_tolerated() {
    let parsed = parse_ok(
        "c.csv",
        b"Name,Phone,Email,Company\nAda,4155552671\nGrace,4155552672,g@example.com,Navy,extra,fields\n",
    );
    assert_eq!(names(&parsed), ["Ada", "Grace"]);
    assert_eq!(parsed.contacts[1].company.as_deref(), Some("Navy"));
}

#[test]
fn rows_with_nothing_in_known_columns_are_blank() {
    let parsed = parse_ok(
        "c.csv",
        b"Name,Phone,Other\nAda,4155552671,x\n,,stray note\n , ,\nGrace,4155552672,\n",
    );
    assert_eq!(parsed.total_rows, 2);
    assert_eq!(names(&parsed), ["Ada", "Grace"]);
}

// ---------- limits ----------

fn csv_with_rows(count: usize, blank_every: usize) -> String {
    let mut csv = String::from("Name,Phone\n");
    for i in 0..count {
        if i % blank_every == 0 {
            csv.push_str(",\n\n");
        }
        csv.push_str(&format!("Person {i},+1 415 555 {:04}\n", i % 10_000));
    }
    csv
}

#[test]
fn max_rows_allows_exactly_the_limit() {
    let parsed = parse_ok("c.csv", csv_with_rows(1000, 7).as_bytes());
    assert_eq!(parsed.total_rows, 1000);
    let rows: Vec<Vec<V>> = std::iter::once(row(&["Name", "Phone"]))
        .chain((0..1000).map(|i| vec![s(&format!("P{i}")), V::N(4155550000.0 + f64::from(i))]))
        .collect();
    assert_eq!(parse_ok("c.xlsx", &xlsx(rows)).total_rows, 1000);
}

#[test]
fn one_row_over_the_limit_imports_nothing() {
    let err = parse_err("c.csv", csv_with_rows(1001, 7).as_bytes());
    assert_error(&err, StatusCode::PAYLOAD_TOO_LARGE, "too_many_rows");
    assert_eq!(
        err.details,
        Some(serde_json::json!({ "max_rows": 1000, "found": 1001 }))
    );
    let rows: Vec<Vec<V>> = std::iter::once(row(&["Name", "Phone"]))
        .chain((0..1500).map(|i| vec![s(&format!("P{i}")), V::N(4155550000.0 + f64::from(i))]))
        .collect();
    let err = parse_err("c.xlsx", &xlsx(rows));
    assert_eq!(
        err.details,
        Some(serde_json::json!({ "max_rows": 1000, "found": 1500 }))
    );
}

#[test]
fn byte_limit() {
    let limits = ImportLimits {
        max_bytes: 64,
        ..limits()
    };
    let small = b"Name,Phone\nAda,4155552671\n";
    assert!(parse("c.csv", small, &limits).is_ok());
    let big = csv_with_rows(5, 100);
    let err = parse("c.csv", big.as_bytes(), &limits).unwrap_err();
    assert_error(&err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        err.details,
        Some(serde_json::json!({ "max_bytes": 64, "found": big.len() }))
    );
}

#[test]
fn limits_come_from_the_config() {
    let config = crate::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://app@localhost/app".into()),
        "STACK_PROJECT_ID" => Some("p".into()),
        "CONTACT_IMPORT_MAX_ROWS" => Some("50".into()),
        "DEFAULT_PHONE_REGION" => Some("gb".into()),
        _ => None,
    })
    .unwrap();
    let limits = ImportLimits::from_settings(&crate::settings::Settings::defaults(&config));
    assert_eq!(
        (limits.max_rows, limits.max_bytes, limits.default_region),
        (50, 4 << 20, country::Id::GB)
    );
}

#[test]
fn reports_serialize_as_the_endpoint_answers() {
    let duplicate = serde_json::to_value(DuplicateRow {
        row: 3,
        phone: "+14155552671".into(),
    })
    .unwrap();
    assert_eq!(
        duplicate,
        serde_json::json!({ "row": 3, "phone": "+14155552671" })
    );
    let invalid = serde_json::to_value(InvalidRow {
        row: 4,
        field: "email",
        reason: "bad".into(),
    })
    .unwrap();
    assert_eq!(
        invalid,
        serde_json::json!({ "row": 4, "field": "email", "reason": "bad" })
    );
}

// ---------- files that would make calamine over-allocate or panic ----------

fn caught_panics() -> usize {
    workbook::CAUGHT_PANICS.with(|count| count.replace(0))
}

const FORMULA: u16 = 0x0006;
const LABELSST: u16 = 0x00FD;
const BOUNDSHEET: u16 = 0x0085;
const DIMENSIONS: u16 = 0x0200;

#[test]
fn xlsx_impossible_cell_references_are_refused_before_calamine() {
    let (name, bytes) = sample_workbooks().swap_remove(0);
    for (possible, impossible) in [
        ("<dimension ref=\"A1:C4\"", "<dimension ref=\"C4:A1\""),
        ("<c r=\"A1\"", "<c r=\"A99999999999\""),
        ("<c r=\"A1\"", "<c r=\"ABCDEFGH1\""),
        ("<row r=\"1\"", "<row r=\"99999999999\""),
    ] {
        let damaged =
            files::rewrite_entries(&bytes, |_, xml| xml.replacen(possible, impossible, 1));
        assert_ne!(damaged, bytes, "{possible} is in the sample");
        assert_error(
            &parse_err(name, &damaged),
            StatusCode::BAD_REQUEST,
            "corrupt_file",
        );
        assert_eq!(caught_panics(), 0, "{impossible}");
    }
}

#[test]
fn xlsx_announcing_too_many_shared_strings_is_refused_before_calamine() {
    let good = xlsx(vec![row(&["Name", "Phone"]), row(&["Ada", "4155552671"])]);
    let announcing = |count: &str| {
        files::rewrite_entries(&good, |name, xml| {
            if !name.ends_with("sharedStrings.xml") {
                return xml;
            }
            let at = xml
                .find("uniqueCount=\"")
                .expect("rust_xlsxwriter writes uniqueCount")
                + 13;
            let end = at + xml[at..].find('"').expect("closing quote");
            format!("{}{count}{}", &xml[..at], &xml[end..])
        })
    };
    // What a damaged-workbook fuzz run found: calamine reserved 151 GB for this and aborted.
    assert_error(
        &parse_err("c.xlsx", &announcing("4723684945")),
        StatusCode::BAD_REQUEST,
        "corrupt_file",
    );
    let parsed = parse("c.xlsx", &announcing("1000"), &limits()).expect("a plausible count");
    assert_eq!(parsed.contacts.len(), 1);
}

#[test]
fn xlsx_sheets_spanning_too_many_cells_are_refused_before_calamine() {
    // Possible references, but calamine would allocate the whole grid they span (terabytes
    // for the last cell of the sheet) and abort the process.
    let (name, bytes) = sample_workbooks().swap_remove(0);
    for (possible, far) in [
        (
            "<dimension ref=\"A1:C4\"",
            "<dimension ref=\"A1:XFD1048576\"",
        ),
        ("<c r=\"A1\"", "<c r=\"XFD1048576\""),
    ] {
        let spread = files::rewrite_entries(&bytes, |_, xml| xml.replacen(possible, far, 1));
        assert_ne!(spread, bytes, "{possible} is in the sample");
        assert_error(
            &parse_err(name, &spread),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
    }
}

#[test]
fn xls_dimensions_records_are_not_trusted() {
    // Every sheet claims all 65,536 rows and 256 columns; calamine reserves what they claim.
    let bytes = files::edit_xls_stream(XLS_FIXTURE, |stream| {
        for at in files::biff_records(stream) {
            if u16::from_le_bytes([stream[at], stream[at + 1]]) == DIMENSIONS {
                stream[at + 4..at + 18]
                    .copy_from_slice(&[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
            }
        }
    });
    assert_eq!(parse_ok("c.xls", &bytes).total_rows, 6);
}

#[test]
fn xls_formula_cells_use_their_cached_value() {
    // The guard empties formula expressions; the cached result must still come through.
    let bytes = files::edit_xls_stream(XLS_FIXTURE, |stream| {
        let at = files::biff_record(stream, FORMULA);
        stream[at + 10..at + 18].copy_from_slice(&4155552673.0f64.to_le_bytes());
    });
    let parsed = parse_ok("c.xls", &bytes);
    assert_eq!(
        parsed.contacts.last(),
        Some(&contact(9, "Formula Phone", "+14155552673"))
    );
    assert_eq!(caught_panics(), 0);
}

#[test]
fn xls_cells_far_apart_are_refused() {
    // One cell moved to IV65536: calamine would build a 65,536 x 256 grid.
    let bytes = files::edit_xls_stream(XLS_FIXTURE, |stream| {
        let at = files::biff_record(stream, LABELSST);
        stream[at + 4..at + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x00]);
    });
    let err = parse_err("c.xls", &bytes);
    assert_error(&err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(err.details.unwrap()["max_cells"], guard::MAX_GRID_CELLS);
}

#[test]
fn xls_sheet_offsets_outside_the_stream_are_corrupt() {
    let bytes = files::edit_xls_stream(XLS_FIXTURE, |stream| {
        let at = files::biff_record(stream, BOUNDSHEET);
        stream[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    assert_error(
        &parse_err("c.xls", &bytes),
        StatusCode::BAD_REQUEST,
        "corrupt_file",
    );
    assert_eq!(caught_panics(), 0);
}

/// Found by `damaged_workbook_files_never_panic`: two changed bytes lengthen a record of the
/// fixture's first sheet, so a walk of the stream from its start steps over the other two
/// sheets' first records. calamine reads each sheet from its offset all the same, and met a
/// DIMENSIONS record the guard had not zeroed (its last row before its first: an overflow).
#[test]
fn xls_sheets_the_guards_walk_does_not_reach_are_corrupt() {
    let mut bytes = XLS_FIXTURE.to_vec();
    bytes[1999] = 0xa9;
    bytes[2348] = 0x09;
    assert_error(
        &parse_err("c.xls", &bytes),
        StatusCode::BAD_REQUEST,
        "corrupt_file",
    );
    assert_eq!(caught_panics(), 0);
}

#[test]
fn ods_repeated_cells_are_counted_before_calamine_expands_them() {
    let header = "<table:table-row><table:table-cell office:value-type=\"string\"><text:p>Name</text:p></table:table-cell><table:table-cell office:value-type=\"string\"><text:p>Phone</text:p></table:table-cell></table:table-row>";
    let bomb = "<table:table-row table:number-rows-repeated=\"2000\"><table:table-cell table:number-columns-repeated=\"1000\" office:value-type=\"float\" office:value=\"1\"><text:p>1</text:p></table:table-cell></table:table-row>";
    let err = parse_err("c.ods", &files::ods_table(&format!("{header}{bomb}")));
    assert_error(&err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        err.details.unwrap()["found"]
            .as_u64()
            .map(|n| n > 2_000_000),
        Some(true)
    );
}

#[test]
fn ods_trailing_empty_repeats_are_fine() {
    // What LibreOffice writes below the data: empty cells repeated to the sheet's edges.
    let rows = "<table:table-row><table:table-cell office:value-type=\"string\"><text:p>Name</text:p></table:table-cell><table:table-cell office:value-type=\"string\"><text:p>Phone</text:p></table:table-cell><table:table-cell table:number-columns-repeated=\"1022\"/></table:table-row>\
                <table:table-row><table:table-cell office:value-type=\"string\"><text:p>Ada</text:p></table:table-cell><table:table-cell office:value-type=\"float\" office:value=\"4155552671\"><text:p>4155552671</text:p></table:table-cell><table:table-cell table:number-columns-repeated=\"1022\"/></table:table-row>\
                <table:table-row table:number-rows-repeated=\"1048574\"><table:table-cell table:number-columns-repeated=\"1024\"/></table:table-row>";
    let parsed = parse_ok("c.ods", &files::ods_table(rows));
    assert_eq!(parsed.contacts, [contact(2, "Ada", "+14155552671")]);
}

fn sample_workbooks() -> Vec<(&'static str, Vec<u8>)> {
    let rows = vec![
        row(&["Name", "Phone", "Email"]),
        vec![s("Ada"), V::N(4155552671.0), s("a@b.co")],
        vec![V::F("=A2", Some("Ada")), s("4155552672"), V::Blank],
        vec![V::F("=A3", None), V::D(2024, 1, 2), V::N(3.5)],
    ];
    vec![
        ("c.xlsx", xlsx(rows.clone())),
        ("c.ods", ods(rows)),
        ("c.xls", XLS_FIXTURE.to_vec()),
    ]
}

/// Record types calamine parses (and a few it does not).
const BIFF_TYPES: [u16; 30] = [
    0x0006, 0x0007, 0x000A, 0x0017, 0x0018, 0x0085, 0x00BD, 0x00D6, 0x00E0, 0x00E5, 0x00EB, 0x00FC,
    0x00FD, 0x013D, 0x0200, 0x0201, 0x0203, 0x0204, 0x0205, 0x0207, 0x027E, 0x041E, 0x0809, 0x0042,
    0x0022, 0x002F, 0x003C, 0x0031, 0x0293, 0x0092,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        magic in prop::sample::select(vec![&b""[..], b"PK\x03\x04", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"]),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        extension in prop::sample::select(vec!["csv", "xlsx", "xls", "ods", "txt"]),
    ) {
        let _ = parse(&format!("f.{extension}"), &[magic, &bytes].concat(), &limits());
        prop_assert_eq!(caught_panics(), 0);
    }

    #[test]
    fn random_text_never_panics_and_accounts_for_every_row(text in "[A-Za-z0-9 ,;\t\"\n\r+@.=-]{0,400}") {
        let csv = format!("Name,Phone,Email\n{text}");
        if let Ok(parsed) = parse("f.csv", csv.as_bytes(), &limits()) {
            prop_assert_eq!(
                parsed.total_rows,
                parsed.contacts.len() + parsed.duplicates.len() + parsed.invalid.len()
            );
        }
    }

    #[test]
    fn damaged_workbook_files_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (name, mut bytes) = sample_workbooks().swap_remove(which);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = parse(name, &bytes, &limits());
        let _ = parse(name, &bytes[..cut.index(bytes.len())], &limits());
        prop_assert_eq!(caught_panics(), 0);
    }

    /// Damage inside a well-formed OLE container reaches calamine's BIFF parser, which trusts
    /// record lengths: the guard must refuse or repair every such record first.
    #[test]
    fn damaged_xls_records_never_reach_a_calamine_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        retype in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(BIFF_TYPES.to_vec()), any::<prop::sample::Index>())),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let bytes = files::edit_xls_stream(XLS_FIXTURE, |stream| {
            if let Some((record, kind, length)) = retype {
                let records = files::biff_records(stream);
                let at = records[record.index(records.len())];
                let old = usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
                let new = u16::try_from(length.index(old + 1)).unwrap();
                stream[at..at + 2].copy_from_slice(&kind.to_le_bytes());
                stream[at + 2..at + 4].copy_from_slice(&new.to_le_bytes());
            }
            for (at, byte) in edits {
                let i = at.index(stream.len());
                stream[i] = byte;
            }
            if let Some(cut) = cut {
                stream.truncate(cut.index(stream.len()));
            }
        });
        let _ = parse("c.xls", &bytes, &limits());
        prop_assert_eq!(caught_panics(), 0);
    }

    /// Damage inside well-formed zip entries reaches calamine's XML readers, and none of it
    /// makes them panic (a panic would only be shielded where panics unwind).
    #[test]
    fn damaged_workbook_xml_never_panics(
        which in 0usize..2,
        entry in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u32>()), 1..6),
    ) {
        const ALPHABET: &[u8] = b"<>/=\" 0123456789-:abcdefghijklmnopqrstuvwxyzA&;#x.";
        let (name, bytes) = sample_workbooks().swap_remove(which);
        let entries = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap().len();
        let target = entry.index(entries);
        let mut index = 0;
        let damaged = files::rewrite_entries(&bytes, |_, xml| {
            index += 1;
            if index - 1 != target {
                return xml;
            }
            let mut text = xml.into_bytes();
            for (at, how, value) in &edits {
                let at = at.index(text.len().max(1)).min(text.len().saturating_sub(1));
                match how {
                    0 if !text.is_empty() => text[at] = ALPHABET[*value as usize % ALPHABET.len()],
                    1 if !text.is_empty() => { text.remove(at); }
                    _ => { text.splice(at..at, value.to_string().into_bytes()); }
                }
            }
            String::from_utf8_lossy(&text).into_owned()
        });
        caught_panics();
        let _ = parse(name, &damaged, &limits());
        prop_assert_eq!(caught_panics(), 0, "calamine panicked on a damaged {}", name);
    }
}
