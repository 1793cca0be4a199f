//! Clients for the services we call: typed requests, timeouts and retries in one place.

pub mod elevenlabs;
pub mod retry;
pub mod stack_auth;
pub mod stripe;
