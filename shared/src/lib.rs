//! The core crate: everything with logic lives here, so one Router serves Lambda, the local
//! server and the tests. Function crates only build [`AppState`] and hand the router to a runtime.

pub mod account;
pub mod admin;
pub mod agents;
pub mod auth;
pub mod aws;
pub mod billing;
pub mod calls;
pub mod checked_sql;
pub mod clients;
pub mod config;
pub mod contacts;
pub mod credits;
pub mod dashboard;
pub mod db;
pub mod email;
pub mod error;
pub mod export;
pub mod export_jobs;
pub mod http;
pub mod ids;
pub mod leads;
pub mod lenient;
pub mod phone;
pub mod ratelimit;
pub mod settings;
pub mod spreadsheet;
pub mod state;
pub mod telemetry;
pub mod tenant;
pub mod text;
pub mod time;
pub mod tokens;
pub mod transcript;
pub mod users;
pub mod webhooks;

pub use config::Config;
pub use error::AppError;
pub use state::AppState;
