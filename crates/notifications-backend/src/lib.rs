//! The notifications backend: configuration, authentication, HTTP API, services and storage.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod service;
pub mod signals;
pub mod store;
pub mod cleaner;
pub mod cli;
pub mod server;

pub use server::{BackendBuilder, RunningBackend, StartError};
