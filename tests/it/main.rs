//! Integration tests against the real local stack that `scripts/test` starts: the API server,
//! Postgres, moto and the simulators. Every test makes its own users (fresh token subjects),
//! so tests run in parallel without cleaning up after each other.

mod support;

// Shared with the benches, which time ingest's AWS calls the same way.
#[path = "../benches/support/aws_calls.rs"]
mod aws_calls;

mod account_flows;
mod admin;
mod agents;
mod analytics;
mod auth_tokens;
mod billing;
mod calls;
mod checked_sql;
mod config_errors;
mod contact_lookup;
mod contact_upload;
mod contacts;
mod credits_ledger;
mod dashboard;
mod dlq;
mod emails;
mod exports;
mod http_errors;
mod leads;
mod list_totals;
mod migrations;
mod outbound;
mod reconcile;
mod request_connection;
mod searches;
mod secret_rotation;
mod security;
mod simulate_call;
mod users;
mod webhook_billing;
mod webhook_ingest;
mod webhooks;
