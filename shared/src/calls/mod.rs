//! Calls and chats: placing them (outbound, batch); the webhooks record how they went.

pub mod batches;
pub mod outbound;
pub mod read;
pub mod recording;
