//! Whose data a piece of work may touch. [`TenantId`] can only be made inside this crate: by
//! authentication from a verified token, or by code that found the tenant through a trusted
//! mapping (an agent id on a verified webhook). Everything that only needs the id imports this
//! leaf module and nothing else.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

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

/// How many subjects a process remembers the account of (about 100 bytes each).
const KNOWN_ACCOUNTS: usize = 10_000;

/// The account each token subject was last authenticated as in this process, so that
/// authentication can send a read-only handler's statements for it beside the account's
/// lookup. A subject names one account until an operator changes that; the lookup beside the
/// read tells whether it still does.
#[derive(Default)]
pub struct KnownAccounts {
    accounts: Mutex<HashMap<String, TenantId>>,
}

impl KnownAccounts {
    pub(crate) fn get(&self, subject: &str) -> Option<TenantId> {
        self.lock().get(subject).copied()
    }

    pub(crate) fn remember(&self, subject: &str, tenant: TenantId) {
        let mut accounts = self.lock();
        if accounts.get(subject) == Some(&tenant) {
            return;
        }
        if accounts.len() >= KNOWN_ACCOUNTS {
            accounts.clear();
        }
        accounts.insert(subject.to_owned(), tenant);
    }

    pub(crate) fn forget(&self, subject: &str) {
        self.lock().remove(subject);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantId>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_known_as_its_last_account_until_forgotten_or_the_set_is_full() {
        let known = KnownAccounts::default();
        let first = TenantId::from_trusted(uuid::Uuid::from_u128(1));
        let second = TenantId::from_trusted(uuid::Uuid::from_u128(2));
        assert_eq!(known.get("a"), None);
        known.remember("a", first);
        assert_eq!(known.get("a"), Some(first));
        known.remember("a", second);
        assert_eq!(known.get("a"), Some(second), "the last account seen");
        known.forget("a");
        assert_eq!(known.get("a"), None);

        known.remember("a", first);
        for i in 1..KNOWN_ACCOUNTS {
            known.remember(&i.to_string(), second);
        }
        assert_eq!(known.get("a"), Some(first), "room for every one so far");
        known.remember("one more", second);
        assert_eq!(known.get("a"), None, "a full set starts over");
        assert_eq!(known.get("one more"), Some(second));
    }
}
