//! Black-box tests of the HTTP API, each on SQLite and on PostgreSQL. The numbered cases are
//! those of the upstream contract, section 8.
// Tests: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

mod auth;
mod auth_matrix;
mod backstage;
mod catalog_locations;
mod cli;
mod client;
mod contract;
mod crash;
mod create;
mod digests;
mod email;
mod end_to_end;
mod idempotency;
mod import;
mod instances;
mod janus;
mod jwks;
mod list;
mod metrics;
mod outage;
mod plans;
mod postgres_tls;
mod preferences;
mod processors;
mod rate_limit;
mod read_all;
mod recipients;
mod remote_catalog;
mod routes;
mod scope;
mod send_batch;
mod settings;
mod shared_database;
mod signal_limits;
mod signals;
mod signals_client;
mod slack;
mod store;
mod tls;
mod update;
mod web_browser;
mod web_signin;
mod webhook;
