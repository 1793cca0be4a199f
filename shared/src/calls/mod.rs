//! Calls and chats: placing them (outbound, batch); the webhooks record how they went.

pub mod batches;
pub mod event;
pub mod lead_merge;
pub mod lifecycle;
pub mod metrics;
pub mod outbound;
pub mod owner;
pub mod person;
pub mod read;
pub mod recording;
pub mod rollup;
pub mod scored;
