//! Whose data a piece of work may touch. [`TenantId`] can only be made inside this crate: by
//! authentication from a verified token, or by code that found the tenant through a trusted
//! mapping (an agent id on a verified webhook). Everything that only needs the id imports this
//! leaf module and nothing else.

use uuid::Uuid;

/// The tenant (a user account) whose data a request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(Uuid);

impl TenantId {
    pub(crate) fn from_trusted(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant whose owner verified their email address: what spending the platform's telephony
/// (placing calls) requires, so a throwaway sign-up cannot dial out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedTenant(TenantId);

impl VerifiedTenant {
    pub(crate) fn from_trusted(tenant: TenantId) -> Self {
        Self(tenant)
    }

    pub fn tenant(self) -> TenantId {
        self.0
    }
}
