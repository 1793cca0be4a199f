//! Typed ids of the resources a request names, parsed once at the edge (`http::Id`). A path
//! segment that is not a UUID names nothing: it gets that resource's 404, the same answer as
//! the id of a row that does not exist or is another tenant's.

use std::{error::Error, fmt};

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// An id type that names one kind of resource.
pub trait ResourceId: Sized {
    /// The resource, as a 404 names it.
    const RESOURCE: &'static str;

    fn from_uuid(id: Uuid) -> Self;

    /// The id in `raw`; the resource's 404 when it is not one.
    fn parse(raw: &str) -> AppResult<Self> {
        raw.parse()
            .map(Self::from_uuid)
            .map_err(|_| AppError::not_found(Self::RESOURCE))
    }
}

macro_rules! resource_id {
    ($(#[$meta:meta])* $name:ident, $resource:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl ResourceId for $name {
            const RESOURCE: &'static str = $resource;

            fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <Uuid as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }
    };
}

resource_id!(AgentId, "agent");
resource_id!(CallId, "call");
resource_id!(ContactId, "contact");
resource_id!(ExportId, "export");
resource_id!(LeadId, "lead");
resource_id!(PurchaseId, "purchase");
resource_id!(
    /// A user (tenant) as the admin API names it.
    UserId,
    "user"
);
resource_id!(
    /// An event kept in unmatched_events.
    UnmatchedEventId,
    "unmatched event"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_is_the_resources_404() {
        let id = Uuid::new_v4();
        assert_eq!(
            AgentId::parse(&id.to_string()).expect("parses").as_uuid(),
            &id
        );
        for raw in ["", "42", "not-a-uuid", "../x"] {
            let err = LeadId::parse(raw).expect_err(raw);
            assert_eq!((err.status.as_u16(), err.code), (404, "not_found"));
        }
    }
}
