//! Contacts: reading uploaded contact files (storage and endpoints live elsewhere).
pub mod import;
