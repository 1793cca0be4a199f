//! Finding the header row: each header cell is compared, ignoring case, spaces, underscores and
//! punctuation, with the spellings below. Within one field an earlier spelling wins, then the
//! leftmost column ("Phone" beats "Home Phone" wherever they are).

use serde_json::{json, Value};

use super::{Cell, SheetRow};

/// How many non-blank rows are searched for the header.
pub const HEADER_SEARCH_ROWS: usize = 10;

/// Indexes [`SPELLINGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    FirstName,
    LastName,
    Phone,
    Email,
    Company,
    Notes,
}

/// Normalized spellings (see [`key`]) per field, in [`Field`] order, best first.
const SPELLINGS: [&[&str]; 7] = [
    &[
        "name",
        "fullname",
        "contactname",
        "customername",
        "clientname",
        "leadname",
        "displayname",
    ],
    &["firstname", "givenname", "forename", "first"],
    &["lastname", "surname", "familyname", "last"],
    &[
        "phone",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "mobileno",
        "cell",
        "cellphone",
        "cellnumber",
        "tel",
        "telephone",
        "telephonenumber",
        "telno",
        "number",
        "contactnumber",
        "primaryphone",
        "phone1",
        "phone1value",
        "businessphone",
        "workphone",
        "homephone",
    ],
    &["email", "emailaddress", "mail", "email1", "email1value"],
    &[
        "company",
        "companyname",
        "organisation",
        "organization",
        "org",
        "business",
        "businessname",
        "employer",
        "account",
        "accountname",
        "organization1name",
    ],
    &[
        "notes",
        "note",
        "comments",
        "comment",
        "remarks",
        "description",
        "memo",
    ],
];

/// Where each field is, as 0-based column indexes. There is always a phone column and at
/// least one of name, first name, last name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Columns {
    pub name: Option<usize>,
    pub first_name: Option<usize>,
    pub last_name: Option<usize>,
    pub phone: usize,
    pub email: Option<usize>,
    pub company: Option<usize>,
    pub notes: Option<usize>,
}

impl Columns {
    fn all(&self) -> impl Iterator<Item = usize> {
        [
            self.name,
            self.first_name,
            self.last_name,
            Some(self.phone),
            self.email,
            self.company,
            self.notes,
        ]
        .into_iter()
        .flatten()
    }

    /// Whether the row has nothing in any recognized column.
    pub fn all_empty(&self, row: &SheetRow) -> bool {
        self.all().all(|column| *row.cell(column) == Cell::Empty)
    }
}

/// The columns, when `row` is a header row.
pub(super) fn find(row: &SheetRow) -> Option<Columns> {
    // Per field: (rank of the spelling, column).
    let mut best: [Option<(usize, usize)>; SPELLINGS.len()] = [None; SPELLINGS.len()];
    for (column, cell) in row.cells.iter().enumerate() {
        let Cell::Text(text) = cell else { continue };
        let key = key(text);
        for (slot, spellings) in best.iter_mut().zip(SPELLINGS) {
            let Some(rank) = spellings.iter().position(|s| *s == key) else {
                continue;
            };
            if slot.is_none_or(|(best_rank, _)| rank < best_rank) {
                *slot = Some((rank, column));
            }
        }
    }
    let column = |field: Field| best[field as usize].map(|(_, column)| column);
    let columns = Columns {
        name: column(Field::Name),
        first_name: column(Field::FirstName),
        last_name: column(Field::LastName),
        phone: column(Field::Phone)?,
        email: column(Field::Email),
        company: column(Field::Company),
        notes: column(Field::Notes),
    };
    let has_name =
        columns.name.is_some() || columns.first_name.is_some() || columns.last_name.is_some();
    has_name.then_some(columns)
}

/// `" E-mail_Address "` -> `"emailaddress"`.
fn key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The `details` of a `missing_header` error.
pub(super) fn expected_columns() -> Value {
    let spellings = |field: Field| SPELLINGS[field as usize];
    json!({
        "required": ["name", "phone_number"],
        "optional": ["email", "company", "notes"],
        "searched_rows": HEADER_SEARCH_ROWS,
        "accepted_headers": {
            "name": spellings(Field::Name),
            "first_name": spellings(Field::FirstName),
            "last_name": spellings(Field::LastName),
            "phone_number": spellings(Field::Phone),
            "email": spellings(Field::Email),
            "company": spellings(Field::Company),
            "notes": spellings(Field::Notes),
        },
        "note": "headers are matched ignoring case, spaces, underscores and punctuation; \
                 first and last name columns are joined when there is no name column",
    })
}
