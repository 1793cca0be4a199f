//! Local simulators for the services we cannot reach offline. They speak the real wire formats
//! (see ../shared/ref), so the product's clients run unchanged against them; only base URLs differ.

pub mod elevenlabs;
pub mod faults;
pub mod form;
pub mod intercept;
pub mod keys;
pub mod stack_auth;
pub mod stripe;
