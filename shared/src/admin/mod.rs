//! The platform admin's tools: users and their credits, agents of any tenant, configuration and
//! secret rotation, the webhook events that need a hand, system analytics, and the audit log
//! that records every one of these actions.

pub mod agents;
pub mod analytics;
pub mod audit;
pub mod events;
pub mod purchases;
pub mod secrets;
pub mod users;
